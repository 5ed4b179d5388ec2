// Shared pieces of the console's views: the URL as the state, API calls, number and time
// formats, the colour-blind-safe palette, the time range and filter controls, tables, charts.

// Okabe–Ito (colour-blind safe) first, then Paul Tol's muted scheme; Other is grey.
export const palette = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#F0E442', '#000000',
  '#882255', '#44AA99', '#999933', '#332288'];
export const otherColour = '#9e9e9e';

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// The view's state is its URL's query string.
export function getState(defaults) {
  const p = new URLSearchParams(location.search);
  const s = { ...defaults };
  for (const [k, v] of p) s[k] = v;
  return s;
}

export function stateURL(path, state, defaults = {}) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(state)) {
    if (v === '' || v === undefined || v === null) continue;
    if (defaults[k] !== undefined && String(defaults[k]) === String(v) && k !== 'from' && k !== 'to') continue;
    p.set(k, v);
  }
  const q = p.toString();
  return path + (q ? '?' + q : '');
}

export class APIError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

export async function api(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v !== undefined && v !== null) q.set(k, v);
  const resp = await fetch(`/api/v1/${path}?${q}`);
  const body = await resp.json().catch(() => ({ error: `${resp.status} ${resp.statusText}` }));
  if (!resp.ok) throw new APIError(resp.status, body.error || `${resp.status} ${resp.statusText}`);
  return body;
}

// Views load asynchronously; a view the user has already left must not touch the page.
let generation = 0;
export function nextView() { return ++generation; }
export function stale(gen) { return gen !== generation; }

export function setState(state) { document.body.dataset.state = state; }

const si = ['', 'k', 'M', 'G', 'T', 'P'];
export function fmtRate(v, unit) {
  const u = unit === 'bps' ? 'bit/s' : 'pkt/s';
  let i = 0;
  while (Math.abs(v) >= 1000 && i < si.length - 1) { v /= 1000; i++; }
  if (v !== 0 && Math.abs(v) < 0.01) return `${v.toPrecision(2)} ${u}`;
  const digits = v === 0 ? 0 : Math.abs(v) < 10 ? 2 : Math.abs(v) < 100 ? 1 : 0;
  return `${v.toFixed(digits)} ${si[i]}${u}`;
}
export function fmtCount(n) { return Number(n).toLocaleString('en-US'); }
export function fmtTime(ms) {
  const d = new Date(ms);
  return d.toISOString().replace('T', ' ').replace(/\.000Z$|Z$/, '') + ' UTC';
}

export const rangePresets = [['now-15m', 'Last 15 minutes'], ['now-1h', 'Last hour'], ['now-6h', 'Last 6 hours'],
  ['now-24h', 'Last 24 hours'], ['now-7d', 'Last 7 days'], ['now-30d', 'Last 30 days']];

// rangeControls: a preset select and, for a custom range, from/to inputs (RFC 3339 or now-…).
export function rangeControls(state) {
  const isPreset = state.to === 'now' && rangePresets.some(([v]) => v === state.from);
  const from = h('input', { name: 'from', value: state.from, size: 22, 'aria-label': 'From (RFC 3339 or now-1h)', title: 'RFC 3339 (2026-12-07T10:00:00Z) or now-1h' });
  const to = h('input', { name: 'to', value: state.to, size: 22, 'aria-label': 'To', title: 'RFC 3339 or now' });
  const custom = h('span', { class: 'custom', style: 'display:contents' },
    h('label', {}, 'From', from), h('label', {}, 'To', to));
  const sel = h('select', { name: 'range', 'aria-label': 'Time range' },
    rangePresets.map(([v, t]) => h('option', { value: v, selected: isPreset && v === state.from }, t)),
    h('option', { value: 'custom', selected: !isPreset }, 'Custom…'));
  const sync = () => { custom.hidden = sel.value !== 'custom'; custom.style.display = sel.value === 'custom' ? 'contents' : 'none'; };
  sel.addEventListener('change', () => {
    if (sel.value !== 'custom') { from.value = sel.value; to.value = 'now'; sel.form?.requestSubmit(); }
    sync();
  });
  sync();
  return [h('label', {}, 'Time range', sel), custom];
}

let dimsCache;
export async function dimensions() {
  if (!dimsCache) dimsCache = api('dimensions', {});
  return dimsCache;
}

// filterInput: the filter box with completion of columns, operators and values (values come
// from /api/v1/complete over the view's range).
export function filterInput(state, getRange) {
  const input = h('input', { name: 'filter', value: state.filter || '', autocomplete: 'off', spellcheck: 'false',
    placeholder: 'e.g. dst_port = 443 AND src_addr << 10.0.0.0/8', 'aria-label': 'Filter',
    role: 'combobox', 'aria-autocomplete': 'list', 'aria-expanded': 'false', 'aria-controls': 'filter-suggest' });
  const list = h('ul', { class: 'suggest', id: 'filter-suggest', role: 'listbox', hidden: true });
  let items = [], active = -1, replaceFrom = 0, timer, seq = 0;
  const close = () => { list.hidden = true; input.setAttribute('aria-expanded', 'false'); items = []; active = -1; };
  // With nothing typed yet the list only offers: Enter still submits, arrows pick.
  const show = (sugs, from, typed) => {
    items = sugs; replaceFrom = from; active = sugs.length && typed ? 0 : -1;
    list.replaceChildren(...sugs.map((s, i) => h('li', { role: 'option', id: `sug-${i}`, 'aria-selected': i === active ? 'true' : 'false',
      onmousedown: (e) => { e.preventDefault(); accept(i); } }, s.label, s.hint ? h('small', {}, s.hint) : null)));
    list.hidden = !sugs.length; input.setAttribute('aria-expanded', sugs.length ? 'true' : 'false');
  };
  const mark = () => [...list.children].forEach((li, i) => {
    li.setAttribute('aria-selected', i === active ? 'true' : 'false');
    if (i === active) { li.scrollIntoView({ block: 'nearest' }); input.setAttribute('aria-activedescendant', li.id); }
  });
  const accept = (i) => {
    const s = items[i]; if (!s) return;
    const pos = input.selectionStart;
    input.value = input.value.slice(0, replaceFrom) + s.insert + input.value.slice(pos);
    const caret = replaceFrom + s.insert.length;
    input.setSelectionRange(caret, caret);
    close(); input.focus(); update();
  };
  const update = async () => {
    const my = ++seq;
    const dims = await dimensions();
    const before = input.value.slice(0, input.selectionStart);
    const v = before.match(/([a-z_]+)\s*(!<<|<<|!=|<=|>=|=|<|>|not\s+in\s*\(|in\s*\(|not\s+like|like)\s*(?:[^\s,()]+\s*,\s*)*(['"]?)([^\s,()'"]*)$/i);
    if (v) {
      const d = dims.find((d) => d.name === v[1].toLowerCase());
      if (!d || d.groupOnly) return close();
      const prefix = v[4];
      let r;
      try { r = await api('complete', { column: d.name, prefix, ...getRange() }); } catch { return close(); }
      if (my !== seq) return;
      const quote = d.kind === 'string' ? "'" : '';
      show(r.values.filter((x) => x !== '').map((x) => ({ label: x, insert: quote + x + quote + ' ' })),
        before.length - prefix.length - v[3].length, prefix !== '' || v[3] !== '');
      return;
    }
    const c = before.match(/(?:^|[\s(])([A-Za-z_]*)$/);
    if (!c) return close();
    const prefix = c[1].toLowerCase();
    const afterCond = /[\w')"]\s+[A-Za-z_]*$/.test(before) && !/\b(and|or|not)\s+[A-Za-z_]*$/i.test(before) && before.trim() !== c[1];
    let sugs = [];
    if (afterCond) {
      sugs = ['AND', 'OR'].filter((k) => k.toLowerCase().startsWith(prefix)).map((k) => ({ label: k, insert: k + ' ' }));
    } else {
      sugs = dims.filter((d) => !d.groupOnly && d.name.startsWith(prefix))
        .map((d) => ({ label: d.name, hint: `${d.title} · ${d.operators.join(' ')}`, insert: d.name + ' ' }));
      if ('not'.startsWith(prefix) && prefix) sugs.push({ label: 'NOT', insert: 'NOT ' });
    }
    if (my === seq) show(sugs.slice(0, 30), before.length - prefix.length, prefix !== '');
  };
  // Typing closes the list at once (Enter then submits what was typed); suggestions for the new
  // text come after a pause.
  input.addEventListener('input', () => { close(); seq++; clearTimeout(timer); timer = setTimeout(update, 120); });
  input.addEventListener('focus', () => { if (!input.value) update(); });
  input.addEventListener('blur', () => setTimeout(close, 100));
  // An Enter that picked a suggestion must not also submit the form (some event sequences
  // deliver its keypress even though keydown was cancelled).
  let swallowEnter = false;
  input.addEventListener('keypress', (e) => { if (e.key === 'Enter' && swallowEnter) e.preventDefault(); });
  input.addEventListener('keyup', () => { swallowEnter = false; });
  input.addEventListener('keydown', (e) => {
    if (list.hidden) return;
    if (e.key === 'ArrowDown') { active = Math.min(active + 1, items.length - 1); mark(); e.preventDefault(); }
    else if (e.key === 'Enter' && active < 0) { close(); }
    else if (e.key === 'ArrowUp') { active = Math.max(active - 1, 0); mark(); e.preventDefault(); }
    else if ((e.key === 'Enter' || e.key === 'Tab') && active >= 0) { swallowEnter = e.key === 'Enter'; accept(active); e.preventDefault(); }
    else if (e.key === 'Escape') { close(); e.preventDefault(); }
  });
  return h('label', { class: 'filter-wrap' }, 'Filter', input, list);
}

// table: columns [{title, get(row), num, class}], rows; onOpen makes rows focusable and opens.
export function table(columns, rows, { onOpen, testid, selected } = {}) {
  const head = h('tr', {}, columns.map((c) => h('th', { class: c.num ? 'num' : null, scope: 'col' }, c.title)));
  const body = rows.map((r, i) => {
    const tr = h('tr', onOpen ? { tabindex: '0', 'aria-selected': selected === i ? 'true' : null } : {},
      columns.map((c) => { const v = c.get(r, i); return h('td', { class: c.num ? 'num' : c.class || null }, v); }));
    if (onOpen) {
      tr.addEventListener('click', (e) => { if (e.target.closest('a')) return; onOpen(r, i, tr); });
      tr.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); onOpen(r, i, tr); }
        if (e.key === 'ArrowDown') { tr.nextElementSibling?.focus(); e.preventDefault(); }
        if (e.key === 'ArrowUp') { tr.previousElementSibling?.focus(); e.preventDefault(); }
      });
    }
    return tr;
  });
  return h('div', { class: 'tablewrap' }, h('table', { 'data-testid': testid }, h('thead', {}, head), h('tbody', {}, body)));
}

// chart: an ECharts instance in el that follows the window's size.
const charts = new Set();
export function chart(el) {
  const c = echarts.init(el, null, { renderer: 'canvas' });
  charts.add(c);
  return c;
}
export function disposeCharts() { for (const c of charts) c.dispose(); charts.clear(); }
window.addEventListener('resize', () => { for (const c of charts) c.resize(); });

export function errorBox() { return h('div', { class: 'error', role: 'alert', 'data-testid': 'error' }); }

// showError puts an API error in the view's error box; 4xx are the user's to fix.
export function showError(box, err) {
  box.textContent = err instanceof APIError && err.status < 500 ? err.message : `The console could not get the data: ${err.message}`;
  setState('error');
}

// addrFilter writes a filter condition for one dimension value (null if not filterable).
export function condition(dim, value, dims) {
  const d = dims.find((x) => x.name === dim);
  if (!d || value === 'Other') return null;
  if (d.groupOnly) return `${dim.replace('_prefix', '_addr')} << ${value}`;
  if (d.kind === 'string') return `${dim} = '${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  if (d.kind === 'proto') return `${dim} = ${/^\d+$/.test(value) ? value : value.toLowerCase()}`;
  return `${dim} = ${value}`;
}

export function andFilters(...fs) {
  const parts = fs.filter((f) => f && f.trim());
  if (parts.length <= 1) return parts[0] || '';
  return parts.map((f) => (/\bOR\b/i.test(f) ? `(${f})` : f)).join(' AND ');
}
