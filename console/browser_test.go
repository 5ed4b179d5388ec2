package console

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Longer than most files on purpose: the small harness (browser, wait, act) and the tests of
// the four views read best together.
//
// Browser tests: the console in Debian's real Chromium (headless), driven with chromedp,
// against the real ClickHouse and the hand-checked rows. Screenshots are written to
// $PACKETLAKE_ARTIFACTS/console (default: $TMPDIR/packetlake-artifacts/console).

const chromiumPath = "/usr/bin/chromium"

func artifactDir(t *testing.T) string {
	root := os.Getenv("PACKETLAKE_ARTIFACTS")
	if root == "" {
		root = filepath.Join(os.TempDir(), "packetlake-artifacts")
	}
	dir := filepath.Join(root, "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	mu   sync.Mutex
	errs []string // console errors and uncaught exceptions
}

// newBrowser starts a fresh headless Chromium (its own profile) at 1280×800.
func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the browser tests need Debian's chromium at %s (scripts/install-deps.sh installs it; apt-get install -y chromium): %v", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	}
	actx, cancelA := chromedp.NewExecAllocator(t.Context(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	b := &browser{t: t, ctx: ctx, base: base}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				b.mu.Lock()
				b.errs = append(b.errs, m.String()+" "+m.URL)
				b.mu.Unlock()
			}
		}
	}()
	return b
}

func (b *browser) run(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// evalJS evaluates an expression and decodes its JSON value into out.
func evalJS[T any](b *browser, js string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.t.Fatalf("browser: %s: %v", js, err)
	}
	return v
}

// wait waits until the view finished loading and returns its state (ready or error).
func (b *browser) wait() string {
	b.t.Helper()
	state, err := chromedp.Run(b.ctx, chromedp.Poll[string](`document.body.dataset.state === 'ready' || document.body.dataset.state === 'error' ? document.body.dataset.state : null`,
		chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		b.t.Fatalf("browser: waiting for the view: %v", err)
	}
	return state
}

// act runs actions that make the view load again, and waits until it has.
func (b *browser) act(actions ...chromedp.Action[chromedp.Void]) string {
	b.t.Helper()
	evalJS[string](b, `document.body.dataset.state = 'stale'`)
	b.run(actions...)
	return b.wait()
}

func (b *browser) open(path string) string {
	b.t.Helper()
	b.run(chromedp.Navigate(b.base + path))
	return b.wait()
}

func (b *browser) noErrors(where string) {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errs) > 0 {
		b.t.Errorf("%s: browser errors:\n%s", where, strings.Join(b.errs, "\n"))
	}
	b.errs = nil
}

func (b *browser) screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(artifactDir(b.t), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", path)
}

// tableTotals reads a traffic table's first column and its Packets column.
func (b *browser) tableTotals() map[string]uint64 {
	b.t.Helper()
	rows := evalJS[[][]string](b, `[...document.querySelectorAll('[data-testid=traffic-table] tbody tr')].map(tr => [...tr.cells].map(td => td.textContent))`)
	m := map[string]uint64{}
	for _, r := range rows {
		var n uint64
		fmt.Sscan(strings.ReplaceAll(r[len(r)-5], ",", ""), &n)
		m[r[0]] = n
	}
	return m
}

// sqlTotals is the same numbers straight from SQL over packets.
func (f *fixture) sqlTotals(t *testing.T, expr, where string) map[string]uint64 {
	t.Helper()
	out := f.sqlScalar(t, fmt.Sprintf(`SELECT %s AS k, sum(sample_rate) FROM packets
WHERE ts >= '2026-12-06 10:00:00' AND ts < '2026-12-06 12:00:00' AND (%s) GROUP BY k ORDER BY k`, expr, where))
	m := map[string]uint64{}
	for _, l := range strings.Split(out, "\n") {
		var n uint64
		k, v, _ := strings.Cut(l, "\t")
		fmt.Sscan(v, &n)
		m[k] = n
	}
	return m
}

func sortedKeys(m map[string]uint64) string {
	var ks []string
	for k, v := range m {
		ks = append(ks, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(ks)
	return strings.Join(ks, " ")
}

func TestBrowserTraffic(t *testing.T) {
	f := newFixture(t, handPackets)
	b := newBrowser(t, f.url)
	range2h := "from=2026-12-06T10:00:00Z&to=2026-12-06T12:00:00Z"
	if s := b.open("/traffic?" + range2h + "&dims=dst_port"); s != "ready" {
		t.Fatalf("traffic view: state %s", s)
	}
	b.noErrors("traffic view")
	b.screenshot("traffic-1280x800")
	used := evalJS[string](b, `document.querySelector('[data-testid=table-used]').textContent`)
	if used != "traffic_1m" {
		t.Errorf("the view says it read %q, want traffic_1m", used)
	}
	if got, want := sortedKeys(b.tableTotals()), sortedKeys(f.sqlTotals(t, "toString(dst_port)", "1")); got != want {
		t.Errorf("the table shows %s, SQL says %s", got, want)
	}
	legend := func() string {
		names := evalJS[[]string](b, `echarts.getInstanceByDom(document.querySelector('[data-testid=chart]')).getOption().series.map(s => s.name)`)
		return strings.Join(names, ",")
	}
	if l := legend(); l != "443,53,80,0" {
		t.Errorf("chart series %s, want 443,53,80,0", l)
	}

	// Group by the source address instead: the URL, the chart and the table follow.
	// SetValue dispatches input and change, as a user's choice does.
	b.act(chromedp.SetValue(chromedp.CSS(`select[name=dim0]`), "src_addr"))
	loc := evalJS[string](b, `location.search`)
	if !strings.Contains(loc, "dims=src_addr") {
		t.Errorf("URL after the change: %s", loc)
	}
	if got, want := sortedKeys(b.tableTotals()), sortedKeys(f.sqlTotals(t, "replaceRegexpOne(IPv6NumToString(src_addr), '^::ffff:', '')", "1")); got != want {
		t.Errorf("by src_addr: the table shows %s, SQL says %s", got, want)
	}
	if l := legend(); l != "10.0.0.1,10.0.0.3,2001:db8::1,10.0.1.5" {
		t.Errorf("chart series by src_addr: %s", l)
	}

	// A filter, typed and submitted with Enter.
	b.act(chromedp.SendKeys(chromedp.CSS(`input[name=filter]`), "dst_port = 443"),
		chromedp.SendKeys(chromedp.CSS(`input[name=filter]`), "\r"))
	if got, want := sortedKeys(b.tableTotals()), sortedKeys(f.sqlTotals(t, "replaceRegexpOne(IPv6NumToString(src_addr), '^::ffff:', '')", "dst_port = 443")); got != want {
		t.Errorf("filtered: the table shows %s, SQL says %s", got, want)
	}

	// The last hour (the server's clock is pinned at 12:00): only h2's packet at 11:10.
	b.act(chromedp.SetValue(chromedp.CSS(`select[name=range]`), "now-1h"))
	if got := sortedKeys(b.tableTotals()); got != "10.0.0.1=10" {
		t.Errorf("last hour: the table shows %s, want 10.0.0.1=10", got)
	}
	loc = evalJS[string](b, `location.pathname + location.search`)
	want := "/traffic?from=now-1h&to=now&dims=src_addr&filter=dst_port+%3D+443"
	if loc != want {
		t.Errorf("URL %s, want %s", loc, want)
	}
	// Reload-safe: the same URL in a fresh load shows the same.
	if s := b.open(loc); s != "ready" || sortedKeys(b.tableTotals()) != "10.0.0.1=10" {
		t.Errorf("reload of %s: %s %v", loc, s, b.tableTotals())
	}
	// Back goes to the previous state.
	b.act(chromedp.NavigateBack())

	// Sankey between two dimensions; the previous period as a dashed line.
	b.open("/traffic?" + range2h + "&dims=src_addr,dst_port&chart=sankey")
	sankey := evalJS[struct {
		Type  string
		Links int
	}](b, `(() => { const s = echarts.getInstanceByDom(document.querySelector('[data-testid=chart]')).getOption().series[0]; return {type: s.type, links: s.links.length}; })()`)
	if sankey.Type != "sankey" || sankey.Links != 4 {
		t.Errorf("sankey: %+v, want 4 links", sankey)
	}
	b.screenshot("traffic-sankey")
	b.open("/traffic?" + range2h + "&dims=dst_port&previous=1&chart=lines")
	if l := legend(); l != "443,53,80,0,Previous period" {
		t.Errorf("with the previous period: %s", l)
	}
	b.noErrors("traffic changes")

	// Phone width: nothing wider than the screen but the tables' own scrolling.
	b.run(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	b.open("/traffic?" + range2h + "&dims=dst_port")
	overflow := evalJS[int](b, `document.documentElement.scrollWidth - window.innerWidth`)
	if overflow > 0 {
		t.Errorf("at phone width the page is %d px wider than the screen", overflow)
	}
	b.screenshot("traffic-phone")
	b.noErrors("phone width")
}

func TestBrowserBadFilterShowsMessage(t *testing.T) {
	f := newFixture(t, handPackets)
	b := newBrowser(t, f.url)
	if s := b.open("/traffic?filter=" + url.QueryEscape("dst_port = ")); s != "error" {
		t.Fatalf("state %s, want error", s)
	}
	msg := evalJS[string](b, `document.querySelector('[data-testid=error]').textContent`)
	if !strings.Contains(msg, "expected a value for dst_port") {
		t.Errorf("error shown: %q", msg)
	}
	b.screenshot("traffic-bad-filter")
}

func TestBrowserAnomalyToPackets(t *testing.T) {
	f := newFixture(t, handPackets)
	f.insert(t, "anomalies", []pkt{{"ts": "2026-12-06 10:00:12.000", "kind": "port_scan", "subject": "10.0.0.1", "window_start": "2026-12-06 10:00:05.000",
		"window_end": "2026-12-06 10:00:10.000", "score": 120, "evidence": `{"distinct_ports":120}`, "detector_version": "t", "detector_host": "d", "id": "00000000-0000-0000-0000-000000000001"}})
	b := newBrowser(t, f.url)
	if s := b.open("/anomalies?from=2026-12-06T09:00:00Z&to=2026-12-06T12:00:00Z"); s != "ready" {
		t.Fatalf("anomalies view: %s", s)
	}
	b.screenshot("anomalies")
	b.act(chromedp.Click(chromedp.CSS(`[data-testid=to-packets]`)))
	loc := evalJS[string](b, `location.pathname + location.search`)
	n := evalJS[int](b, `document.querySelectorAll('[data-testid=packets-table] tbody tr').length`)
	if !strings.HasPrefix(loc, "/packets?") || !strings.Contains(loc, "filter=src_addr+%3D+10.0.0.1") || n != 2 {
		t.Fatalf("after the click: %s with %d packets, want the packets view with the scan's 2", loc, n)
	}
	// Keyboard: focus the second packet, Enter opens its details.
	b.run(chromedp.Focus(chromedp.CSS(`[data-testid=packets-table] tbody tr:nth-child(2)`)), chromedp.KeyEvent("\r"))
	details := evalJS[string](b, `document.querySelector('[data-testid=details]').textContent`)
	for _, want := range []string{"Packet 2", "tls_sniexample.com", "src10.0.0.1", "dst_port443", "flagsACK"} {
		if !strings.Contains(details, want) {
			t.Errorf("details lack %q: %s", want, details)
		}
	}
	loc = evalJS[string](b, `location.search`)
	if !strings.Contains(loc, "sel=1") {
		t.Errorf("the selection is not in the URL: %s", loc)
	}
	b.screenshot("packets")
	b.noErrors("anomaly to packets")
}

func TestBrowserEveryViewLoads(t *testing.T) {
	f := newFixture(t, handPackets)
	f.insert(t, "collector_stats", []pkt{{"ts": at(30 * time.Second), "host": "h1", "iface": "eth0", "collector_id": 7, "raw": `{"kernel_seen":10}`}})
	b := newBrowser(t, f.url)
	for _, v := range []string{"/", "/traffic", "/packets", "/anomalies", "/pipeline",
		"/pipeline?from=2026-12-06T10:00:00Z&to=2026-12-06T12:00:00Z"} {
		if s := b.open(v); s != "ready" {
			t.Errorf("%s: state %s", v, s)
		}
		b.noErrors(v)
	}
	seen := evalJS[string](b, `document.querySelector('[data-testid=kpi-seen]').textContent`)
	stored := evalJS[string](b, `document.querySelector('[data-testid=kpi-stored]').textContent`)
	// The kernel reported 10 packets (h1, 10:00); 6 rows are stored in the range (5 of h1, 1 of h2).
	if seen != "10" || stored != "6" {
		t.Errorf("pipeline shows seen %s stored %s, want 10 and 6", seen, stored)
	}
	b.screenshot("pipeline")

	// At phone width no view is wider than the screen (tables scroll inside their frame).
	b.run(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	for _, v := range []string{"/packets?from=2026-12-06T10:00:00Z&to=2026-12-06T12:00:00Z&sel=0", "/anomalies", "/pipeline?from=2026-12-06T10:00:00Z&to=2026-12-06T12:00:00Z"} {
		if s := b.open(v); s != "ready" {
			t.Errorf("%s at phone width: %s", v, s)
		}
		if overflow := evalJS[int](b, `document.documentElement.scrollWidth - window.innerWidth`); overflow > 0 {
			t.Errorf("%s at phone width is %d px wider than the screen", v, overflow)
		}
		b.noErrors(v + " at phone width")
	}
	b.screenshot("packets-phone")
}

// The filter box completes column names, then values from the data in range; the keyboard
// picks them.
func TestBrowserFilterCompletion(t *testing.T) {
	f := newFixture(t, handPackets)
	b := newBrowser(t, f.url)
	b.open("/traffic?from=2026-12-06T10:00:00Z&to=2026-12-06T12:00:00Z&dims=dst_port")
	suggestions := func(want string) []string {
		t.Helper()
		s, err := chromedp.Run(b.ctx, chromedp.Poll[[]string](fmt.Sprintf(`(() => {
			const l = document.getElementById('filter-suggest');
			const items = l.hidden ? [] : [...l.children].map(li => li.firstChild.textContent);
			return items.includes(%q) ? items : null; })()`, want), chromedp.WithPollingTimeout(10*time.Second)))
		if err != nil {
			t.Fatalf("no suggestion %q: %v", want, err)
		}
		return s
	}
	b.run(chromedp.SendKeys(chromedp.CSS(`input[name=filter]`), "dst_p"))
	if s := suggestions("dst_port"); len(s) != 1 {
		t.Errorf("columns for dst_p: %v", s)
	}
	b.run(chromedp.KeyEvent("\t"))
	b.run(chromedp.SendKeys(chromedp.CSS(`input[name=filter]`), "= 4"))
	if s := suggestions("443"); len(s) != 1 {
		t.Errorf("values for dst_port = 4: %v", s)
	}
	b.run(chromedp.KeyEvent("\r"))
	if v := evalJS[string](b, `document.querySelector('input[name=filter]').value`); v != "dst_port = 443 " {
		t.Errorf("filter after two completions: %q", v)
	}
	b.run(chromedp.SendKeys(chromedp.CSS(`input[name=filter]`), "AND tls_sni = e"))
	suggestions("example.com")
	b.run(chromedp.KeyEvent("\r"))
	if v := evalJS[string](b, `document.querySelector('input[name=filter]').value`); v != "dst_port = 443 AND tls_sni = 'example.com' " {
		t.Errorf("filter after a string completion: %q", v)
	}
	b.act(chromedp.KeyEvent("\r"))
	if got := sortedKeys(b.tableTotals()); got != "443=1" {
		t.Errorf("after the completed filter: %s, want 443=1", got)
	}
	b.noErrors("filter completion")
}

// Dragging across the chart zooms into that time range, and the range goes to the URL.
func TestBrowserTrafficZoom(t *testing.T) {
	f := newFixture(t, handPackets)
	b := newBrowser(t, f.url)
	b.open("/traffic?from=2026-12-06T10:00:00Z&to=2026-12-06T12:00:00Z&dims=dst_port")
	// The pixels of 10:00 and 10:30 on the x axis.
	xs := evalJS[[]float64](b, `(() => { const c = echarts.getInstanceByDom(document.querySelector('[data-testid=chart]'));
		const r = document.querySelector('[data-testid=chart]').getBoundingClientRect();
		return [c.convertToPixel({xAxisIndex: 0}, Date.parse('2026-12-06T10:00:00Z')) + r.left,
		        c.convertToPixel({xAxisIndex: 0}, Date.parse('2026-12-06T10:30:00Z')) + r.left, r.top + 200]; })()`)
	b.act(chromedp.MouseEvent(chromedp.MousePressed, xs[0], xs[2], chromedp.ButtonLeft),
		chromedp.MouseEvent(chromedp.MouseMoved, (xs[0]+xs[1])/2, xs[2], chromedp.ButtonLeft),
		chromedp.MouseEvent(chromedp.MouseMoved, xs[1], xs[2], chromedp.ButtonLeft),
		chromedp.MouseEvent(chromedp.MouseReleased, xs[1], xs[2], chromedp.ButtonLeft))
	loc := evalJS[string](b, `location.search`)
	if !strings.Contains(loc, "from=2026-12-06T10%3A00%3A00Z") || !strings.Contains(loc, "to=2026-12-06T10%3A30%3A00Z") {
		t.Errorf("after the drag: %s, want 10:00 to 10:30", loc)
	}
	if got := sortedKeys(b.tableTotals()); got != "0=1 443=2 53=4 80=2" {
		t.Errorf("10:00 to 10:30: %s", got)
	}
	b.noErrors("zoom")
}
