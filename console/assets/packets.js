// Packets view: a packet list like Wireshark's for any filter, the details of the selected
// packet (every stored column, L2 to L7), the kernel's exact flow counters beside it, and
// exports of the list as CSV and JSON.
import { h, api, getState, stateURL, setState, fmtCount, rangeControls, filterInput, table, errorBox, showError, stale } from './common.js';

const defaults = { from: 'now-1h', to: 'now', filter: '', limit: '500', sel: '' };

// Details, by layer: the column names of the packets table (schema/columns.go).
const layers = [
  ['Capture', ['ts', 'host', 'iface', 'ifindex', 'collector_id', 'seq', 'pkt_len', 'sample_rate', 'parse_error']],
  ['Ethernet', ['src_mac_text', 'dst_mac_text', 'eth_type', 'vlan_id', 'inner_vlan_id']],
  ['IP', ['ip_version', 'src', 'dst', 'ip_proto', 'ttl', 'tos', 'ip_len', 'ip_id', 'ip_flags', 'frag_offset', 'flow_label', 'ip6_ext']],
  ['Transport', ['src_port', 'dst_port', 'flags', 'tcp_flags', 'tcp_seq', 'tcp_ack', 'tcp_window', 'icmp_type', 'icmp_code', 'payload_len']],
  ['Origin (GeoIP, passive DNS)', ['src_name', 'src_country', 'src_asn', 'src_as_org', 'dst_name', 'dst_country', 'dst_asn', 'dst_as_org']],
  ['DNS', ['dns_id', 'dns_is_response', 'dns_qname', 'dns_qtype', 'dns_rcode', 'dns_answers', 'dns_answer_addrs']],
  ['TLS', ['tls_sni']],
  ['HTTP', ['http_method', 'http_host', 'http_path']],
];

export async function packetsView(main, navigate, gen) {
  const state = getState(defaults);
  const form = h('form', { class: 'controls', 'aria-label': 'Packets query' },
    rangeControls(state),
    filterInput(state, () => ({ from: form.elements.from.value, to: form.elements.to.value })),
    h('label', {}, 'At most', h('select', { name: 'limit' }, ['100', '500', '1000', '5000', '10000'].map((n) => h('option', { value: n, selected: state.limit === n }, n)))),
    h('button', { class: 'primary', type: 'submit' }, 'Apply'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const el = form.elements;
    navigate(stateURL('/packets', { from: el.from.value.trim(), to: el.to.value.trim(), filter: el.filter.value.trim(), limit: el.limit.value }, defaults));
  });
  form.elements.limit.addEventListener('change', () => form.requestSubmit());
  const q = { from: state.from, to: state.to, filter: state.filter, limit: state.limit };
  const exportLink = (fmt) => h('a', { href: '/api/v1/packets?' + new URLSearchParams({ ...q, format: fmt }), download: `packets.${fmt}` }, `Export ${fmt.toUpperCase()}`);
  const err = errorBox();
  const status = h('div', { class: 'status', 'data-testid': 'status' }, 'Loading…');
  const list = h('div', { class: 'pane' }, h('h2', {}, 'Packets'));
  const details = h('div', { class: 'pane', 'data-testid': 'details' }, h('h2', {}, 'Details'), h('p', { class: 'status' }, 'Select a packet (click, or Enter on a focused row).'));
  const flowsPane = h('div', { class: 'pane', 'data-testid': 'flows' }, h('h2', {}, 'Exact flow counters (kernel)'), h('p', { class: 'status' }, 'Loading…'));
  main.append(form, err, h('div', { class: 'status links' }, exportLink('csv'), exportLink('json')), status,
    h('div', { class: 'split' }, list, h('div', {}, details, flowsPane)));

  const [pr, fr] = await Promise.allSettled([api('packets', q), api('flows', { from: state.from, to: state.to, filter: state.filter })]);
  if (stale(gen)) return;
  if (pr.status === 'rejected') { status.textContent = ''; return showError(err, pr.reason); }
  const r = pr.value;
  window.plLastPackets = r;
  status.textContent = `${fmtCount(r.packets.length)} packets${r.truncated ? ` (the first ${fmtCount(r.limit)}; narrow the filter or range for the rest)` : ''} · ${r.from} to ${r.to} UTC`;
  const t0 = r.packets.length ? Date.parse(r.packets[0].ts.replace(' ', 'T') + 'Z') : 0;
  const showDetails = (p, i, tr) => {
    for (const x of list.querySelectorAll('tr[aria-selected="true"]')) x.setAttribute('aria-selected', 'false');
    tr?.setAttribute('aria-selected', 'true');
    history.replaceState(null, '', stateURL('/packets', { ...state, sel: String(i) }, defaults));
    details.replaceChildren(h('h2', {}, `Packet ${i + 1}`), h('p', { class: 'status' }, p.info),
      ...layers.map(([title, cols]) => {
        const present = cols.filter((c) => p[c] !== undefined && p[c] !== '' && !(title !== 'Capture' && title !== 'IP' && title !== 'Ethernet' && (p[c] === 0 || p[c] === '0')));
        if (!present.length) return null;
        return h('section', {}, h('h3', {}, title), h('dl', { class: 'fields' }, present.flatMap((c) => [h('dt', {}, c.replace('_text', '')), h('dd', {}, String(p[c]))])));
      }).filter(Boolean)); // replaceChildren would print an empty layer's null as text
  };
  const cols = [
    { title: 'No.', num: true, get: (p, i) => i + 1 },
    { title: 'Time (s)', num: true, get: (p) => ((Date.parse(p.ts.replace(' ', 'T') + 'Z') - t0) / 1000).toFixed(3) },
    { title: 'Source', get: (p) => p.src },
    { title: 'Destination', get: (p) => p.dst },
    { title: 'Protocol', get: (p) => p.proto },
    { title: 'Length', num: true, get: (p) => p.pkt_len },
    { title: 'Info', class: 'info', get: (p) => p.info },
  ];
  list.append(r.packets.length ? table(cols, r.packets, { onOpen: showDetails, testid: 'packets-table', selected: Number(state.sel) })
    : h('p', { class: 'note' }, 'No packets in this range and filter.'));
  if (state.sel !== '' && r.packets[Number(state.sel)]) showDetails(r.packets[Number(state.sel)], Number(state.sel), list.querySelectorAll('tbody tr')[Number(state.sel)]);

  if (fr.status === 'rejected') flowsPane.replaceChildren(h('h2', {}, 'Exact flow counters (kernel)'), h('p', { class: 'error' }, fr.reason.message));
  else if (!fr.value.available) flowsPane.replaceChildren(h('h2', {}, 'Exact flow counters (kernel)'), h('p', { class: 'status' }, `Not available for this filter: ${fr.value.reason}.`));
  else flowsPane.replaceChildren(h('h2', {}, 'Exact flow counters (kernel)'),
    h('p', { class: 'status' }, 'Every packet the kernel saw, before sampling, summed over the collector\'s exports in the range.'),
    fr.value.flows.length ? table([
      { title: 'Flow', get: (f) => `${f.proto} ${f.src}:${f.src_port} → ${f.dst}:${f.dst_port}` },
      { title: 'Packets', num: true, get: (f) => fmtCount(f.packets) },
      { title: 'Bytes', num: true, get: (f) => fmtCount(f.bytes) },
      { title: 'SYN/FIN/RST', num: true, get: (f) => `${f.syn}/${f.fin}/${f.rst}` },
      { title: 'Received by', get: (f) => (Number(f.recv_pid) ? `${f.recv_comm} (${f.recv_pid})${f.recv_container ? ` container ${f.recv_container}` : ''}${f.recv_pod ? ` pod ${f.recv_pod}` : ''}` : '–') },
      { title: '', get: (f) => h('a', { href: stateURL('/packets', { from: state.from, to: state.to,
        filter: `src_addr = ${f.src} AND dst_addr = ${f.dst} AND ip_proto = ${f.ip_proto} AND src_port = ${f.src_port} AND dst_port = ${f.dst_port}` }) }, 'This flow') },
    ], fr.value.flows.slice(0, 50), { testid: 'flows-table' }) : h('p', { class: 'note' }, 'No flow exports in this range.'));
  setState('ready');
}
