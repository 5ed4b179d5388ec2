// Drops view: packets this host's kernel dropped after packetlake saw them, per drop reason
// over time and the flows that lost the most (the drops table, bpf/drops.c); and the
// Receivers view: the local processes the flows were delivered to (collect --receivers).
import { h, api, getState, stateURL, setState, fmtCount, rangeControls, table, chart, errorBox, showError, stale } from './common.js';

const defaults = { from: 'now-1h', to: 'now', filter: '' };
const palette = ['#D55E00', '#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#F0E442', '#000000'];

// form: the range and a filter (only the columns the view's table holds; the server says which).
function form(path, state, navigate, placeholder) {
  const f = h('form', { class: 'controls', 'aria-label': 'Query' }, rangeControls(state),
    h('label', { class: 'filter-wrap' }, 'Filter', h('input', { name: 'filter', value: state.filter, autocomplete: 'off', spellcheck: 'false', placeholder, 'aria-label': 'Filter' })),
    h('button', { class: 'primary', type: 'submit' }, 'Apply'));
  f.addEventListener('submit', (e) => {
    e.preventDefault();
    const el = f.elements;
    navigate(stateURL(path, { from: el.from.value.trim(), to: el.to.value.trim(), filter: el.filter.value.trim() }, defaults));
  });
  return f;
}

const reasonName = (x) => (Number(x.observed) ? x.reason : `${x.reason} (elsewhere)`);

export async function dropsView(main, navigate, gen) {
  const state = getState(defaults);
  const err = errorBox();
  const chartEl = h('div', { class: 'chart small', 'data-testid': 'chart', role: 'img', 'aria-label': 'Kernel drops per reason' });
  const rest = h('div');
  main.append(form('/drops', state, navigate, 'e.g. dst_port = 53 AND host = web-1'), err,
    h('h2', {}, 'Packets the kernel dropped, per reason'), chartEl, rest);
  let r;
  try { r = await api('drops', { from: state.from, to: state.to, filter: state.filter }); } catch (e) { if (!stale(gen)) showError(err, e); return; }
  if (stale(gen)) return;
  window.plLastDrops = r;
  const names = [...new Set(r.reasons.map(reasonName))];
  const buckets = new Map(names.map((n) => [n, new Map()]));
  for (const x of r.series) buckets.get(reasonName(x))?.set(Number(x.t), Number(x.packets));
  const ts = [];
  for (let t = r.from; t < r.to; t += r.step * 1000) ts.push(t);
  chart(chartEl).setOption({
    animation: false, grid: { left: 60, right: 16, top: 40, bottom: 30 }, legend: { top: 0 }, tooltip: { trigger: 'axis' },
    xAxis: { type: 'time' }, yAxis: { type: 'value', name: 'packets' },
    series: names.map((n, i) => ({ name: n, type: 'bar', stack: 'drops', color: palette[i % palette.length], data: ts.map((t) => [t, buckets.get(n).get(t) || 0]) })),
  });
  const n = (k, t) => ({ title: t, num: true, get: (x) => fmtCount(x[k]) });
  const ports = (a, p) => (Number(p) ? (a.includes(':') ? `[${a}]:${p}` : `${a}:${p}`) : a);
  rest.replaceChildren(
    h('h2', {}, 'Per reason'),
    r.reasons.length ? table([{ title: 'Reason', get: (x) => x.reason },
      { title: 'Seen by packetlake', get: (x) => (Number(x.observed) ? 'yes' : 'no: other interface or made on the host') },
      n('packets', 'Packets'), n('bytes', 'Bytes')], r.reasons, { testid: 'drop-reasons' })
      : h('p', { class: 'note' }, 'No kernel drops in this range.'),
    h('h2', {}, 'Flows with the most dropped packets'),
    r.flows.length ? table([{ title: 'Host', get: (x) => x.host }, { title: 'Interface', get: (x) => x.iface }, { title: 'Reason', get: (x) => x.reason },
      { title: 'Protocol', get: (x) => x.proto || '–' }, { title: 'From', get: (x) => ports(x.src, x.src_port) }, { title: 'To', get: (x) => ports(x.dst, x.dst_port) },
      n('packets', 'Packets'), n('bytes', 'Bytes')], r.flows, { testid: 'drop-flows' })
      : h('p', { class: 'note' }, 'No drops of packets packetlake saw in this range.'),
    h('p', { class: 'note' }, 'Reason names are the kernel\'s (enum skb_drop_reason). MAP_FULL: drops beyond the collector\'s --drop-entries, flow unknown. Turn it off with collect --drops=false.'));
  setState('ready');
}

export async function receiversView(main, navigate, gen) {
  const state = getState(defaults);
  const err = errorBox();
  const rest = h('div');
  main.append(form('/receivers', state, navigate, 'e.g. dst_port = 443'), err, h('h2', {}, 'Local processes receiving the traffic, by bytes'), rest);
  let r;
  try { r = await api('receivers', { from: state.from, to: state.to, filter: state.filter }); } catch (e) { if (!stale(gen)) showError(err, e); return; }
  if (stale(gen)) return;
  window.plLastReceivers = r;
  const n = (k, t) => ({ title: t, num: true, get: (x) => fmtCount(x[k]) });
  const s = (k, t) => ({ title: t, get: (x) => x[k] || '–' });
  rest.replaceChildren(
    r.receivers.length ? table([s('host', 'Host'), { title: 'PID', num: true, get: (x) => (Number(x.pid) ? String(x.pid) : '–') }, s('comm', 'Command'),
      s('container', 'Container'), s('pod', 'Pod'), n('packets', 'Packets'), n('bytes', 'Bytes'), n('flows', 'Flows')], r.receivers, { testid: 'receivers' })
      : h('p', { class: 'note' }, 'No flows in this range.'),
    h('p', { class: 'note' }, '(none): no local process was seen reading the flow\'s socket (forwarded, refused, not read yet, or the collector runs without --receivers).'));
  setState('ready');
}
