// Anomalies view: the detector's incidents as a timeline and a table with their evidence; one
// click opens the traffic or the packets of an anomaly's subject and window.
import { h, api, getState, stateURL, setState, palette, rangeControls, table, chart, errorBox, showError, fmtTime, stale } from './common.js';

const defaults = { from: 'now-24h', to: 'now', kind: '' };

export async function anomaliesView(main, navigate, gen) {
  const state = getState(defaults);
  const form = h('form', { class: 'controls', 'aria-label': 'Anomalies query' }, rangeControls(state),
    h('label', {}, 'Kind', h('select', { name: 'kind' }, h('option', { value: '' }, 'All'),
      ['syn_flood', 'port_scan', 'host_sweep', 'icmp_flood', 'udp_flood', 'dns_tunnel', 'volume_spike'].map((k) => h('option', { value: k, selected: state.kind === k }, k)))),
    h('button', { class: 'primary', type: 'submit' }, 'Apply'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const el = form.elements;
    navigate(stateURL('/anomalies', { from: el.from.value.trim(), to: el.to.value.trim(), kind: el.kind.value }, defaults));
  });
  form.elements.kind.addEventListener('change', () => form.requestSubmit());
  const err = errorBox();
  const status = h('div', { class: 'status', 'data-testid': 'status' }, 'Loading…');
  const chartEl = h('div', { class: 'chart small', 'data-testid': 'chart', role: 'img', 'aria-label': 'Anomalies over time' });
  const tableBox = h('div');
  main.append(form, err, status, chartEl, tableBox);
  let r;
  try { r = await api('anomalies', { from: state.from, to: state.to, kind: state.kind }); } catch (e) { if (stale(gen)) return; status.textContent = ''; return showError(err, e); }
  if (stale(gen)) return;
  window.plLastAnomalies = r;
  const rows = r.anomalies;
  status.textContent = `${rows.length} anomalies`;
  const packetsURL = (a) => stateURL('/packets', { from: a.from, to: a.to, filter: a.filter });
  const trafficURL = (a) => stateURL('/traffic', { from: a.from, to: a.to, filter: a.filter, dims: 'dst_port', chart: 'stacked' });
  const kinds = [...new Set(rows.map((a) => a.kind))].sort();
  const ms = (s) => Date.parse(s.replace(' ', 'T') + 'Z');
  const c = chart(chartEl);
  c.setOption({
    animation: false,
    grid: { left: 100, right: 16, top: 16, bottom: 40 },
    tooltip: { trigger: 'item', formatter: (p) => `${p.data.a.kind} ${p.data.a.subject}<br>${fmtTime(ms(p.data.a.ts))}<br>score ${p.data.a.score}` },
    xAxis: { type: 'time', min: Date.parse(r.from), max: Date.parse(r.to) },
    yAxis: { type: 'category', data: kinds },
    series: [{ type: 'scatter', symbolSize: (v) => 8 + Math.min(16, Math.log10(1 + v[2]) * 4),
      data: rows.map((a) => ({ value: [ms(a.ts), a.kind, a.score], a, itemStyle: { color: palette[kinds.indexOf(a.kind) % palette.length] } })) }],
  });
  c.on('click', (p) => { if (p.data?.a?.filter) navigate(packetsURL(p.data.a)); });
  const cols = [
    { title: 'Reported', get: (a) => a.ts },
    { title: 'Kind', get: (a) => a.kind },
    { title: 'Subject', get: (a) => a.subject },
    { title: 'Score', num: true, get: (a) => Number(a.score).toFixed(1) },
    { title: 'Packets window', get: (a) => `${a.window_start} – ${a.window_end.slice(11)}` },
    { title: 'Evidence', class: 'info', get: (a) => Object.entries(a.evidence || {}).map(([k, v]) => `${k}=${Array.isArray(v) ? v.slice(0, 5).join(',') + (v.length > 5 ? '…' : '') : v}`).join(' ') },
    { title: '', get: (a) => a.filter ? h('span', { class: 'links' }, h('a', { href: packetsURL(a), 'data-testid': 'to-packets' }, 'Packets'), h('a', { href: trafficURL(a) }, 'Traffic')) : '' },
  ];
  tableBox.replaceChildren(rows.length ? table(cols, rows, { testid: 'anomalies-table', onOpen: (a) => a.filter && navigate(packetsURL(a)) })
    : h('p', { class: 'note' }, 'No anomalies in this range. (packetlake detect writes them.)'));
  setState('ready');
}
