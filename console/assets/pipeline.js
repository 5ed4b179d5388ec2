// Pipeline view: the loss budget (query/reports/loss_budget.sql) per minute, from what the
// kernel saw to what ClickHouse stored, per host; how fresh each host's data is; dead letters.
import { h, api, getState, stateURL, setState, fmtCount, rangeControls, table, chart, errorBox, showError, stale } from './common.js';

const defaults = { from: 'now-1h', to: 'now', host: '' };
const parts = [['stored', 'Stored', '#0072B2'], ['sampled', 'Sampled out', '#56B4E9'], ['flows_only', 'Only in flows', '#009E73'], ['unaccounted', 'Lost (unaccounted)', '#D55E00']];

export async function pipelineView(main, navigate, gen) {
  const state = getState(defaults);
  const form = h('form', { class: 'controls', 'aria-label': 'Pipeline query' }, rangeControls(state),
    h('label', {}, 'Host', h('input', { name: 'host', value: state.host, placeholder: 'all hosts', size: 14 })),
    h('button', { class: 'primary', type: 'submit' }, 'Apply'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const el = form.elements;
    navigate(stateURL('/pipeline', { from: el.from.value.trim(), to: el.to.value.trim(), host: el.host.value.trim() }, defaults));
  });
  const err = errorBox();
  const kpis = h('div', { class: 'kpis', 'data-testid': 'kpis' });
  const chartEl = h('div', { class: 'chart small', 'data-testid': 'chart', role: 'img', 'aria-label': 'Loss budget per minute' });
  const rest = h('div');
  main.append(form, err, kpis, h('h2', {}, 'Packets per minute: what became of each packet the kernel saw'), chartEl, rest);
  let r;
  try { r = await api('pipeline', { from: state.from, to: state.to }); } catch (e) { if (!stale(gen)) showError(err, e); return; }
  if (stale(gen)) return;
  window.plLastPipeline = r;
  const rows = r.loss_budget.filter((x) => !state.host || x.host === state.host);
  const sum = (k) => rows.reduce((a, x) => a + Number(x[k] || 0), 0);
  const seen = sum('seen');
  const pct = (n) => (seen ? (100 * n / seen).toFixed(2) + ' %' : '–');
  kpis.replaceChildren(
    h('div', { class: 'kpi' }, h('b', { 'data-testid': 'kpi-seen' }, fmtCount(seen)), h('span', {}, 'packets the kernel saw')),
    ...parts.map(([k, t]) => h('div', { class: 'kpi' }, h('b', { 'data-testid': `kpi-${k}` }, fmtCount(sum(k))), h('span', {}, `${t} · ${pct(sum(k))}`))),
    h('div', { class: 'kpi' }, h('b', {}, fmtCount(r.dead_letters.reduce((a, x) => a + Number(x.n), 0))), h('span', {}, 'dead letters')));
  const minutes = [...new Set(rows.map((x) => x.minute))].sort();
  const byMinute = (k) => minutes.map((m) => [Date.parse(m.replace(' ', 'T') + 'Z'), rows.filter((x) => x.minute === m).reduce((a, x) => a + Number(x[k] || 0), 0)]);
  const c = chart(chartEl);
  c.setOption({
    animation: false, grid: { left: 60, right: 16, top: 56, bottom: 40 }, legend: { top: 0 }, tooltip: { trigger: 'axis' },
    xAxis: { type: 'time' }, yAxis: { type: 'value' },
    series: parts.map(([k, t, col]) => ({ name: t, type: 'bar', stack: 'seen', color: col, data: byMinute(k), barMaxWidth: 24 })),
  });
  const hosts = [...new Set(rows.map((x) => x.host))].sort();
  const perHost = hosts.map((host) => {
    const hr = rows.filter((x) => x.host === host);
    const s = (k) => hr.reduce((a, x) => a + Number(x[k] || 0), 0);
    return { host, seen: s('seen'), stored: s('stored'), sampled: s('sampled'), flows_only: s('flows_only'), unaccounted: s('unaccounted'),
      ring_full: s('ring_full'), malformed: s('malformed'), shed: s('shed'), failed: s('failed'), ingest_lost: s('ingest_lost'), flow_failed: s('flow_failed') };
  });
  const n = (k) => ({ title: k.replace('_', ' '), num: true, get: (x) => fmtCount(x[k]) });
  rest.replaceChildren(
    h('h2', {}, 'Loss budget per host'),
    perHost.length ? table([{ title: 'Host', get: (x) => x.host }, ...['seen', 'stored', 'sampled', 'flows_only', 'unaccounted', 'ring_full', 'malformed', 'shed', 'failed', 'ingest_lost', 'flow_failed'].map(n)],
      perHost, { testid: 'loss-table' }) : h('p', { class: 'note' }, 'No collector statistics in this range.'),
    h('h2', {}, 'Freshness (newest stored packet per host)'),
    r.freshness.length ? table([{ title: 'Host', get: (x) => x.host }, { title: 'Newest packet (UTC)', get: (x) => x.last_packet },
      { title: 'Age', num: true, get: (x) => `${Number(x.age_s).toFixed(1)} s` }], r.freshness, { testid: 'freshness-table' }) : h('p', { class: 'note' }, 'No packets in this range.'),
    h('h2', {}, 'Dead letters (Kafka records the ingester could not decode)'),
    r.dead_letters_latest.length ? table([{ title: 'Time', get: (x) => x.ts }, { title: 'Topic', get: (x) => x.topic }, { title: 'Partition', num: true, get: (x) => x.partition },
      { title: 'Offset', num: true, get: (x) => x.offset }, { title: 'Error', class: 'info', get: (x) => x.error }], r.dead_letters_latest) : h('p', { class: 'note' }, 'None in this range.'));
  setState('ready');
}
