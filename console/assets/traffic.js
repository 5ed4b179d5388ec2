// Traffic view: packets/s or bits/s grouped by up to three dimensions, top N and Other, as a
// stacked area, lines or a Sankey diagram, with the table of the same numbers.
import { h, api, getState, stateURL, setState, fmtRate, fmtCount, palette, otherColour, rangeControls, filterInput,
  dimensions, table, chart, errorBox, showError, condition, andFilters, fmtTime, stale } from './common.js';

const defaults = { from: 'now-6h', to: 'now', dims: 'dst_port', filter: '', unit: 'pps', limit: '10', chart: 'stacked', previous: '0' };

export async function trafficView(main, navigate, gen) {
  const state = getState(defaults);
  const dims = await dimensions();
  if (stale(gen)) return;
  const chosen = state.dims ? state.dims.split(',') : [];
  const dimSelect = (i) => h('label', {}, `Group by ${i + 1}`, h('select', { name: `dim${i}`, 'aria-label': `Dimension ${i + 1}` },
    h('option', { value: '' }, i === 0 ? '(total)' : '(none)'),
    dims.map((d) => h('option', { value: d.name, selected: chosen[i] === d.name }, d.title))));
  const form = h('form', { class: 'controls', 'aria-label': 'Traffic query' },
    rangeControls(state),
    [0, 1, 2].map(dimSelect),
    filterInput(state, () => ({ from: form.elements.from.value, to: form.elements.to.value })),
    h('label', {}, 'Unit', h('select', { name: 'unit' },
      h('option', { value: 'pps', selected: state.unit === 'pps' }, 'packets/s'),
      h('option', { value: 'bps', selected: state.unit === 'bps' }, 'bits/s'))),
    h('label', {}, 'Top', h('select', { name: 'limit' }, ['5', '10', '20', '50'].map((n) => h('option', { value: n, selected: state.limit === n }, n)))),
    h('label', {}, 'Chart', h('select', { name: 'chart' },
      [['stacked', 'Stacked areas'], ['lines', 'Lines'], ['sankey', 'Sankey']].map(([v, t]) => h('option', { value: v, selected: state.chart === v }, t)))),
    h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'previous', checked: state.previous === '1' }), 'Previous period'),
    h('button', { class: 'primary', type: 'submit' }, 'Apply'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const el = form.elements;
    const next = {
      from: el.from.value.trim(), to: el.to.value.trim(),
      dims: [el.dim0.value, el.dim1.value, el.dim2.value].filter(Boolean).filter((v, i, a) => a.indexOf(v) === i).join(','),
      filter: el.filter.value.trim(), unit: el.unit.value, limit: el.limit.value, chart: el.chart.value, previous: el.previous.checked ? '1' : '0',
    };
    navigate(stateURL('/traffic', next, defaults));
  });
  for (const name of ['dim0', 'dim1', 'dim2', 'unit', 'limit', 'chart', 'previous']) form.elements[name].addEventListener('change', () => form.requestSubmit());

  const err = errorBox();
  const status = h('div', { class: 'status', 'data-testid': 'status', 'aria-live': 'polite' }, 'Loading…');
  const chartEl = h('div', { class: 'chart', 'data-testid': 'chart', role: 'img', 'aria-label': 'Traffic chart' });
  const tableBox = h('div');
  main.append(h('h1', { class: 'visually-hidden', style: 'font-size:0;margin:0' }, 'Traffic'), form, err, status, chartEl, tableBox);

  let r;
  const t0 = performance.now();
  try {
    r = await api('traffic', { from: state.from, to: state.to, dims: state.dims, filter: state.filter, unit: state.unit, limit: state.limit, previous: state.previous });
  } catch (e) {
    if (stale(gen)) return;
    status.textContent = '';
    chartEl.remove();
    return showError(err, e);
  }
  if (stale(gen)) return;
  window.plLastTraffic = r;
  const ms = Math.round(performance.now() - t0);
  status.replaceChildren(`Answered from `, h('code', { 'data-testid': 'table-used' }, r.table),
    ` · ${fmtTime(r.from)} to ${fmtTime(r.to)} · step ${r.step} s · ${ms} ms `,
    h('details', { class: 'sql' }, h('summary', {}, 'SQL and why this table'),
      h('p', {}, r.rejected.length ? 'Cheaper tables that could not answer: ' + r.rejected.join('; ') : 'The cheapest table answered.'),
      h('pre', {}, r.sql), h('pre', {}, JSON.stringify(r.params, null, 1))));

  const colour = (key, i) => (key.length === 1 && key[0] === 'Other' ? otherColour : palette[i % palette.length]);
  const name = (key) => key.join(' · ');
  const c = chart(chartEl);
  if (state.chart === 'sankey') {
    drawSankey(c, chartEl, r);
  } else {
    const stacked = state.chart !== 'lines';
    const series = r.series.map((s, i) => ({
      name: name(s.key), type: 'line', stack: stacked ? 'total' : undefined, areaStyle: stacked ? { opacity: 0.85 } : undefined,
      showSymbol: false, lineWidth: 1, color: colour(s.key, i), emphasis: { focus: 'series' },
      data: s.values.map((v, j) => [r.times[j] * 1000, v]),
    }));
    if (r.previous) {
      series.push({ name: 'Previous period', type: 'line', showSymbol: false, color: '#000', lineStyle: { type: 'dashed', width: 1.5 },
        data: r.previous.values.map((v, j) => [r.times[j] * 1000, v]) });
    }
    c.setOption({
      animation: false,
      grid: { left: 70, right: 16, top: 40, bottom: 40 },
      legend: { type: 'scroll', top: 0 },
      tooltip: { trigger: 'axis', valueFormatter: (v) => fmtRate(v, r.unit) },
      xAxis: { type: 'time', axisLabel: { hideOverlap: true } },
      yAxis: { type: 'value', axisLabel: { formatter: (v) => fmtRate(v, r.unit) } },
      // Drag across the chart to zoom into that time range (it becomes the URL's range).
      toolbox: { right: 8, top: 20, feature: { dataZoom: { yAxisIndex: 'none', title: { zoom: 'Drag across the chart to zoom', back: 'Back' } } } },
      series,
    });
    c.dispatchAction({ type: 'takeGlobalCursor', key: 'dataZoomSelect', dataZoomSelectActive: true });
    c.on('datazoom', (e) => {
      const z = e.batch ? e.batch[0] : e;
      if (z.startValue === undefined || z.endValue === undefined) return;
      const iso = (ms) => new Date(Math.round(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
      if (z.endValue - z.startValue < 1000) return;
      // After ECharts has finished with the event: navigating disposes this chart.
      setTimeout(() => navigate(stateURL('/traffic', { ...state, from: iso(z.startValue), to: iso(z.endValue) }, defaults)));
    });
  }

  const dimCols = r.dims.length ? r.dims : ['total'];
  const cols = [
    ...dimCols.map((d, j) => ({ title: dims.find((x) => x.name === d)?.title || 'Total',
      get: (row, i) => [j === 0 ? h('span', { class: 'swatch', style: `background:${colour(row.key, i)}` }) : null, row.key[j] ?? ''] })),
    { title: r.unit === 'bps' ? 'Bytes' : 'Packets', num: true, get: (row) => fmtCount(row.total) },
    { title: 'Average', num: true, get: (row) => fmtRate(row.avg, r.unit) },
    { title: 'Peak', num: true, get: (row) => fmtRate(row.max, r.unit) },
    { title: 'Share', num: true, get: (row) => (100 * row.share).toFixed(1) + ' %' },
    { title: '', get: (row) => {
      if (row.key[0] === 'Other') return '';
      const f = andFilters(state.filter, ...r.dims.map((d, j) => condition(d, row.key[j], dims)));
      return h('span', { class: 'links' },
        h('a', { href: stateURL('/packets', { from: state.from, to: state.to, filter: f }) }, 'Packets'),
        r.dims.length ? h('a', { href: stateURL('/traffic', { ...state, filter: f }, defaults) }, 'Filter') : null);
    } },
  ];
  tableBox.replaceChildren(r.rows.length ? table(cols, r.rows, { testid: 'traffic-table' })
    : h('p', { class: 'note' }, 'No traffic in this range and filter.'));
  setState('ready');
}

function drawSankey(c, el, r) {
  if (r.dims.length < 2) {
    c.dispose();
    el.replaceWith(h('p', { class: 'note', 'data-testid': 'chart' }, 'A Sankey diagram needs two or three dimensions: choose a second "Group by".'));
    return;
  }
  const nodes = new Map(), links = new Map();
  for (const row of r.rows) {
    if (row.key.length !== r.dims.length) continue; // Other
    const names = row.key.map((k, j) => `${r.dims[j]}: ${k}`);
    names.forEach((n) => nodes.set(n, true));
    for (let j = 0; j + 1 < names.length; j++) {
      const id = names[j] + '\u0000' + names[j + 1];
      links.set(id, (links.get(id) || 0) + row.avg);
    }
  }
  c.setOption({
    animation: false,
    color: palette,
    tooltip: { trigger: 'item', valueFormatter: (v) => fmtRate(v, r.unit) },
    series: [{ type: 'sankey', left: 8, right: 120, top: 8, bottom: 8, emphasis: { focus: 'adjacency' }, nodeAlign: 'justify',
      data: [...nodes.keys()].map((name) => ({ name })),
      links: [...links].map(([id, value]) => { const [source, target] = id.split('\u0000'); return { source, target, value }; }),
      lineStyle: { color: 'gradient', opacity: 0.45 } }],
  });
}
