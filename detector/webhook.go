package detector

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// webhook delivers anomalies to an HTTP endpoint from its own goroutine. The cycle only puts
// the payload in a bounded queue (never waiting: a full queue drops and counts), so however
// slow or broken the endpoint, detection keeps its pace. Each payload gets at most 1+retries
// POSTs, each bounded by timeout, with exponential backoff between them.
type webhook struct {
	url     string
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

func newWebhook(cfg Config, log *slog.Logger, m *metrics) *webhook {
	return &webhook{
		url: cfg.Webhook, timeout: cfg.WebhookTimeout, retries: cfg.WebhookRetries,
		backoff: 500 * time.Millisecond,
		client:  &http.Client{},
		log:     log, m: m,
		queue: make(chan []byte, cfg.WebhookQueue),
	}
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
	w.log.Warn("webhook delivery failed", "url", w.url, "attempts", w.retries+1, "err", err)
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
	resp, err := w.client.Do(req)
	if err != nil {
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
