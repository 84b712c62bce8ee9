// The bench's lean EventStore: answers POST /fhir/4.0/$process-message with 202 and an empty body after
// the configured latency, and keeps only what the measurements need (counts, POST latencies in a window,
// message ids and stored times in a live window), bounded in memory. It speaks the control protocol of
// bench/store_host.ts, so that bench/store_client.ts talks to either:
//
//	leanstore                           prints one JSON line {"url", "control", "pid"}, then serves
//	leanstore load <url> <C> <bytes>    a Go client keeping C POSTs of <bytes> in flight (its ceiling)
//
// Control (on `control`): POST /latency?ms=N; POST /reset; GET /progress → {accepted, firstAt, lastAt, at};
// POST /window/start, POST /window/stop → POST latency mean and percentiles since the start;
// POST /live/start, POST /live/stop → [[messageId, storedAt], …]. Times are epoch milliseconds.
//
// It stores nothing and checks nothing but that a body came: every POST with one is answered 202.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	processMessage = "/fhir/4.0/$process-message"
	// POST latencies kept per window (8 MB): beyond, the window's figures are of its first ones.
	maxSamples = 1_000_000
	// Stored times kept per live window; the live runs produce a few thousand.
	maxLive = 200_000
)

type store struct {
	latencyNs atomic.Int64
	mu        sync.Mutex
	accepted  int64
	firstAt   float64 // 0: nothing yet
	lastAt    float64
	window    []float64 // nil outside a window
	live      [][2]any  // nil outside a live window
	liveOn    atomic.Bool
	buffers   sync.Pool
}

func epochMs(t time.Time) float64 { return float64(t.UnixNano()) / 1e6 }

// answer is the EventStore's endpoint: read the body, wait the latency, count, 202.
func (s *store) answer(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	if r.URL.Path != processMessage {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	buffer := s.buffers.Get().(*bytes.Buffer)
	defer s.buffers.Put(buffer)
	buffer.Reset()
	if _, err := buffer.ReadFrom(r.Body); err != nil || buffer.Len() == 0 {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var id string
	if s.liveOn.Load() {
		id = messageID(buffer.Bytes())
	}
	if latency := time.Duration(s.latencyNs.Load()); latency > 0 {
		time.Sleep(latency - time.Since(arrived))
	}
	now := time.Now()
	s.record(now, float64(now.Sub(arrived).Nanoseconds())/1e6, id)
	w.WriteHeader(http.StatusAccepted)
}

func (s *store) record(now time.Time, latencyMs float64, id string) {
	at := epochMs(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accepted++
	if s.firstAt == 0 {
		s.firstAt = at
	}
	s.lastAt = at
	if s.window != nil && len(s.window) < maxSamples {
		s.window = append(s.window, latencyMs)
	}
	if s.live != nil && id != "" && len(s.live) < maxLive {
		s.live = append(s.live, [2]any{id, at})
	}
}

// messageID is the MessageHeader.id of a Bundle (its first entry's resource), or "".
func messageID(body []byte) string {
	var bundle struct {
		Entry []struct {
			Resource struct {
				ResourceType string `json:"resourceType"`
				ID           string `json:"id"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if json.Unmarshal(body, &bundle) != nil || len(bundle.Entry) == 0 {
		return ""
	}
	if first := bundle.Entry[0].Resource; first.ResourceType == "MessageHeader" {
		return first.ID
	}
	return ""
}

// control is the harness's API, on a port of its own.
func (s *store) control(w http.ResponseWriter, r *http.Request) {
	reply := func(value any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(value)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.Method + " " + r.URL.Path {
	case "POST /latency":
		ms, err := strconv.ParseFloat(r.URL.Query().Get("ms"), 64)
		if err != nil || ms < 0 {
			ms = 0
		}
		s.latencyNs.Store(int64(ms * 1e6))
		reply(map[string]any{"latencyMs": ms})
	case "POST /reset":
		s.accepted, s.firstAt, s.lastAt = 0, 0, 0
		reply(map[string]any{})
	case "GET /progress":
		reply(s.progress())
	case "POST /window/start":
		s.window = make([]float64, 0, 64*1024)
		reply(map[string]any{"accepted": s.accepted, "at": epochMs(time.Now())})
	case "POST /window/stop":
		samples := s.window
		s.window = nil
		s.mu.Unlock() // sorting a million samples must not hold the answers up
		reply(summary(samples))
		s.mu.Lock()
	case "POST /live/start":
		s.live = make([][2]any, 0, 4096)
		s.liveOn.Store(true)
		reply(map[string]any{})
	case "POST /live/stop":
		live := s.live
		if live == nil {
			live = [][2]any{}
		}
		s.live = nil
		s.liveOn.Store(false)
		s.mu.Unlock()
		reply(live)
		s.mu.Lock()
	default:
		http.NotFound(w, r)
	}
}

func (s *store) progress() map[string]any {
	out := map[string]any{"accepted": s.accepted, "at": epochMs(time.Now())}
	if s.firstAt != 0 {
		out["firstAt"], out["lastAt"] = s.firstAt, s.lastAt
	}
	return out
}

// summary is what store_host.ts answers to /window/stop: null figures without samples.
func summary(samples []float64) map[string]any {
	out := map[string]any{"samples": len(samples), "mean": nil, "p50": nil, "p99": nil}
	if len(samples) == 0 {
		return out
	}
	sorted := append([]float64(nil), samples...)
	sort.Float64s(sorted)
	sum := 0.0
	for _, ms := range sorted {
		sum += ms
	}
	out["mean"], out["p50"], out["p99"] = sum/float64(len(sorted)), percentile(sorted, 0.5), percentile(sorted, 0.99)
	return out
}

// percentile is bench/stats.ts's: nearest rank.
func percentile(sorted []float64, q float64) float64 {
	rank := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(len(sorted)-1, rank))]
}

func listen(handler http.HandlerFunc) (string, error) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	server := &http.Server{Handler: handler, ReadHeaderTimeout: time.Minute}
	go func() { _ = server.Serve(listener) }()
	return "http://" + listener.Addr().String(), nil
}

func serve() error {
	s := &store{}
	s.buffers.New = func() any { return bytes.NewBuffer(make([]byte, 0, 16*1024)) }
	url, err := listen(s.answer)
	if err != nil {
		return err
	}
	control, err := listen(s.control)
	if err != nil {
		return err
	}
	ready, _ := json.Marshal(map[string]any{"url": url, "control": control, "pid": os.Getpid()})
	fmt.Println(string(ready))
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	<-signals
	return nil
}

// load keeps `concurrency` POSTs of a `size`-byte body in flight against `url`, keep-alive, until killed.
func load(url string, concurrency int, size int) error {
	body := []byte(`{"resourceType":"Bundle","type":"message","padding":"`)
	body = append(body, bytes.Repeat([]byte("x"), max(0, size-len(body)-2))...)
	body = append(body, `"}`...)
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: concurrency,
		MaxConnsPerHost:     concurrency,
		DisableCompression:  true,
	}}
	endpoint := url + processMessage
	var failures atomic.Int64
	fmt.Println(`{"ready":true}`)
	for range concurrency {
		go func() {
			for {
				request, _ := http.NewRequest(http.MethodPost, endpoint, bytes.NewReader(body))
				request.Header.Set("Content-Type", "application/fhir+json; fhirVersion=4.0")
				response, err := client.Do(request)
				if err == nil {
					_, _ = io.Copy(io.Discard, response.Body)
					_ = response.Body.Close()
				}
				if err != nil || response.StatusCode/100 != 2 {
					if n := failures.Add(1); n%1000 == 1 {
						fmt.Fprintf(os.Stderr, "leanstore load: %d failures (%v)\n", n, err)
					}
				}
			}
		}()
	}
	select {}
}

func main() {
	var err error
	switch {
	case len(os.Args) == 1:
		err = serve()
	case len(os.Args) == 5 && os.Args[1] == "load":
		concurrency, e1 := strconv.Atoi(os.Args[3])
		size, e2 := strconv.Atoi(os.Args[4])
		if e1 != nil || e2 != nil || concurrency < 1 || size < 0 {
			err = fmt.Errorf("usage: leanstore load <url> <concurrency> <bytes>")
		} else {
			err = load(os.Args[2], concurrency, size)
		}
	default:
		err = fmt.Errorf("usage: leanstore | leanstore load <url> <concurrency> <bytes>")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "leanstore:", err)
		os.Exit(2)
	}
}
