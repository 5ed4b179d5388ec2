package detector

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/packetlake/packetlake/internal/tlsconf"
)

// webhook delivers anomalies to an HTTP endpoint from its own goroutine. The cycle only puts
// the payload in a bounded queue (never waiting: a full queue drops and counts), so however
// slow or broken the endpoint, detection keeps its pace. Each payload gets at most 1+retries
// POSTs, each bounded by timeout, with exponential backoff between them.
type webhook struct {
	url     string
	shown   string // url redacted, for logs
	secret  []byte // HMAC key; empty: unsigned
	timeout time.Duration
	retries int
	backoff time.Duration // before the first retry; doubles, capped at maxBackoff
	client  *http.Client
	log     *slog.Logger
	m       *metrics

	queue  chan []byte
	cancel context.CancelFunc
	done   chan struct{}
}

const maxBackoff = 5 * time.Second

// SignatureHeader carries "sha256=" + hex(HMAC-SHA256(secret, body)) when a secret is set.
const SignatureHeader = "X-Packetlake-Signature-256"

// Sign is the value of SignatureHeader for body under secret; receivers compute the same and
// compare with hmac.Equal.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func newWebhook(cfg Config, log *slog.Logger, m *metrics) (*webhook, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tc, err := tlsconf.Files{Enable: true, CAFile: cfg.WebhookCAFile}.Config("--webhook-tls")
	if err != nil {
		return nil, fmt.Errorf("detector: webhook: %w", err)
	}
	tr.TLSClientConfig = tc
	return &webhook{
		url: cfg.Webhook, shown: RedactURL(cfg.Webhook), secret: []byte(cfg.WebhookSecret),
		timeout: cfg.WebhookTimeout, retries: cfg.WebhookRetries,
		backoff: 500 * time.Millisecond,
		client: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirect could send the payload elsewhere, and to http
		}},
		log: log, m: m,
		queue: make(chan []byte, cfg.WebhookQueue),
	}, nil
}

func (w *webhook) start() {
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan struct{})
	go func() {
		defer close(w.done)
		for p := range w.queue {
			if ctx.Err() != nil {
				w.m.webhook.WithLabelValues("dropped").Inc()
				continue
			}
			w.deliver(ctx, p)
		}
	}()
}

// enqueue hands a payload to the delivery goroutine without ever blocking.
func (w *webhook) enqueue(payload []byte) {
	select {
	case w.queue <- payload:
	default:
		w.m.webhook.WithLabelValues("dropped").Inc()
		w.log.Warn("webhook queue full: anomaly not delivered", "queue", cap(w.queue))
	}
}

// stop lets the queue drain for up to grace, then abandons what is left (counted as dropped).
// enqueue must not be called any more.
func (w *webhook) stop(grace time.Duration) {
	close(w.queue)
	select {
	case <-w.done:
	case <-time.After(grace):
		w.cancel()
		<-w.done
	}
	w.cancel()
}

func (w *webhook) deliver(ctx context.Context, payload []byte) {
	delay := w.backoff
	var err error
	for attempt := 0; attempt <= w.retries; attempt++ {
		if attempt > 0 {
			w.m.webhookRetries.Inc()
			select {
			case <-ctx.Done():
				w.m.webhook.WithLabelValues("dropped").Inc()
				return
			case <-time.After(delay):
			}
			delay = min(2*delay, maxBackoff)
		}
		var permanent bool
		if permanent, err = w.post(ctx, payload); err == nil {
			w.m.webhook.WithLabelValues("delivered").Inc()
			return
		}
		if permanent || ctx.Err() != nil {
			break
		}
	}
	w.m.webhook.WithLabelValues("failed").Inc()
	w.log.Warn("webhook delivery failed", "url", w.shown, "attempts", w.retries+1, "err", err)
}

// post sends one attempt. permanent is true for answers a retry cannot change (4xx other than
// 408 and 429).
func (w *webhook) post(ctx context.Context, payload []byte) (permanent bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(payload))
	if err != nil {
		return true, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "packetlake-detector")
	if len(w.secret) > 0 {
		req.Header.Set(SignatureHeader, Sign(w.secret, payload))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = w.shown // net/http names the full URL in its errors
		}
		return false, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, nil
	}
	c := resp.StatusCode
	return c >= 400 && c < 500 && c != http.StatusRequestTimeout && c != http.StatusTooManyRequests,
		fmt.Errorf("webhook answered %s", resp.Status)
}
