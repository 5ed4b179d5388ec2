// TCP health view: query/reports/tcp_health.sql per service and tcp_health_flows.sql for the
// worst flow directions (query/TCP_HEALTH.md: each recorded direction analysed alone, as tshark
// would; sampled flows are said to be so, never counted healthy).
import { h, api, getState, stateURL, setState, fmtCount, rangeControls, table, chart, errorBox, showError, stale } from './common.js';

const defaults = { from: 'now-1h', to: 'now' };
const kinds = [['retransmissions', 'Retransmissions', '#D55E00'], ['out_of_order', 'Out of order', '#E69F00'],
  ['duplicate_acks', 'Duplicate ACKs', '#56B4E9'], ['zero_windows', 'Zero windows', '#CC79A7'], ['resets_after_data', 'Resets after data', '#0072B2']];

export async function tcpView(main, navigate, gen) {
  const state = getState(defaults);
  const form = h('form', { class: 'controls', 'aria-label': 'TCP health query' }, rangeControls(state),
    h('button', { class: 'primary', type: 'submit' }, 'Apply'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const el = form.elements;
    navigate(stateURL('/tcp', { from: el.from.value.trim(), to: el.to.value.trim() }, defaults));
  });
  const err = errorBox();
  const chartEl = h('div', { class: 'chart small', 'data-testid': 'chart', role: 'img', 'aria-label': 'TCP trouble per service' });
  const rest = h('div');
  main.append(form, err, h('h2', {}, 'TCP trouble per service (recorded direction: to or from it)'), chartEl, rest);
  let r;
  try { r = await api('tcp_health', { from: state.from, to: state.to }); } catch (e) { if (!stale(gen)) showError(err, e); return; }
  if (stale(gen)) return;
  window.plLastTCPHealth = r;
  const name = (x) => `${x.service}:${x.port} ${x.direction}`;
  const top = r.services.slice(0, 15);
  const c = chart(chartEl);
  c.setOption({
    animation: false, grid: { left: 200, right: 16, top: 40, bottom: 30 }, legend: { top: 0 }, tooltip: { trigger: 'axis' },
    yAxis: { type: 'category', data: top.map(name), inverse: true }, xAxis: { type: 'value' },
    series: kinds.map(([k, t, col]) => ({ name: t, type: 'bar', stack: 'trouble', color: col, data: top.map((x) => Number(x[k] || 0)), barMaxWidth: 18 })),
  });
  const n = (k, t) => ({ title: t, num: true, get: (x) => (x[k] === null ? '–' : fmtCount(x[k])) });
  const ms = (k, t) => ({ title: t, num: true, get: (x) => (x[k] === null ? '–' : `${Number(x[k]).toFixed(3)} ms`) });
  rest.replaceChildren(
    h('h2', {}, 'Per service'),
    r.services.length ? table([{ title: 'Service', get: name }, n('flows', 'Flows'), n('flows_sampled', 'Sampled (not counted)'),
      n('data_segments_counted', 'Data segments'), ...kinds.map(([k, t]) => n(k, t)), n('handshakes', 'Handshakes'),
      ms('handshake_rtt_p50_ms', 'RTT p50'), ms('handshake_rtt_p95_ms', 'RTT p95')], r.services, { testid: 'tcp-services' })
      : h('p', { class: 'note' }, 'No TCP segments in this range.'),
    h('h2', {}, 'Flow directions, worst first'),
    r.flows.length ? table([{ title: 'From', get: (x) => `${x.source}:${x.src_port}` }, { title: 'To', get: (x) => `${x.destination}:${x.dst_port}` },
      { title: 'Recorded', get: (x) => x.recorded }, n('segments', 'Segments'), ...kinds.map(([k, t]) => n(k, t)), ms('handshake_rtt_ms', 'Handshake RTT')],
    r.flows, { testid: 'tcp-flows' }) : h('p', { class: 'note' }, 'No TCP segments in this range.'),
    h('p', { class: 'note' }, 'packetlake records what arrives: each direction is analysed from its own segments, with tshark\'s rules. Window-full is not reported (it needs the other direction and the window-scale option). Flows that lost records to sampling show no counts.'));
  setState('ready');
}
