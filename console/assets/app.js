// The console's router: one view per path, its state in the query string. Links inside the
// console navigate without a reload; back and forward restore the view from the URL.
import { disposeCharts, setState, nextView } from './common.js';
import { trafficView } from './traffic.js';
import { packetsView } from './packets.js';
import { anomaliesView } from './anomalies.js';
import { pipelineView } from './pipeline.js';
import { tcpView } from './tcp.js';
import { dropsView, receiversView } from './drops.js';

const views = { traffic: trafficView, packets: packetsView, anomalies: anomaliesView, pipeline: pipelineView, tcp: tcpView, drops: dropsView, receivers: receiversView };

export function navigate(url, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', url); else history.pushState(null, '', url);
  route();
}
window.plNavigate = navigate;

async function route() {
  const name = location.pathname.replace(/^\//, '') || 'traffic';
  const view = views[name] || views.traffic;
  for (const a of document.querySelectorAll('header nav a')) {
    if (a.dataset.view === name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  document.title = `${name[0].toUpperCase()}${name.slice(1)} · packetlake console`;
  const gen = nextView();
  disposeCharts();
  const main = document.getElementById('view');
  main.replaceChildren();
  setState('loading');
  await view(main, navigate, gen);
}

document.addEventListener('click', (e) => {
  const a = e.target.closest('a[href^="/"]');
  if (!a || a.target || a.hasAttribute('download') || e.ctrlKey || e.metaKey || e.shiftKey || a.getAttribute('href').startsWith('/api/')) return;
  e.preventDefault();
  navigate(a.getAttribute('href'));
});
window.addEventListener('popstate', route);
route();
