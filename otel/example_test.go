package tiercacheotel_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	tiercacheotel "github.com/tiercache/tiercache/otel"
	"github.com/tiercache/tiercache/tiered"
)

// A service exports its caches' metrics to Prometheus: the OpenTelemetry
// Prometheus exporter is the reader of the MeterProvider that the Observer
// uses. A real service serves reg with promhttp.HandlerFor; this example
// gathers it once and prints a few series.
func Example() {
	ctx := context.Background()
	srv := miniredis.NewMiniRedis() // an embedded Redis, for the example
	if err := srv.Start(); err != nil {
		panic(err)
	}
	defer srv.Close()

	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		panic(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer mp.Shutdown(ctx)

	obs, err := tiercacheotel.NewObserver(tiercacheotel.Options{MeterProvider: mp})
	if err != nil {
		panic(err)
	}
	client := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer client.Close()
	hub, err := tiered.NewHub(client, tiered.HubOptions{
		Observer:     obs,
		MaxStaleness: -1, // only to make the example's counts certain
	})
	if err != nil {
		panic(err)
	}
	defer hub.Close()
	users, err := tiered.NewCache(hub, tiered.Options[string]{Namespace: "users"})
	if err != nil {
		panic(err)
	}
	defer users.Close()
	if err := users.WaitReady(ctx); err != nil {
		panic(err)
	}

	_ = users.Set(ctx, "42", "Ada") // one Redis call
	for range 3 {
		_, _ = users.Get(ctx, "42") // three local hits
	}

	families, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range families {
		name := mf.GetName()
		if !strings.HasPrefix(name, "tiercache_") && !strings.HasPrefix(name, "db_client_") {
			continue // target_info
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				if !strings.HasPrefix(l.GetName(), "otel_scope_") {
					labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
				}
			}
			switch {
			case m.GetCounter() != nil:
				fmt.Printf("%s{%s} %v\n", name, strings.Join(labels, ","), m.GetCounter().GetValue())
			case m.GetGauge() != nil:
				fmt.Printf("%s{%s} %v\n", name, strings.Join(labels, ","), m.GetGauge().GetValue())
			case m.GetHistogram() != nil:
				fmt.Printf("%s_count{%s} %v\n", name, strings.Join(labels, ","), m.GetHistogram().GetSampleCount())
			}
		}
	}
	// Output:
	// db_client_operation_duration_seconds_count{db_operation_name="set",db_system_name="redis",tiercache_namespace="users"} 1
	// tiercache_local_hits_total{tiercache_namespace="users",tiercache_operation="Get"} 3
	// tiercache_local_misses_total{tiercache_namespace="users",tiercache_operation="Get"} 0
	// tiercache_reads_total{tiercache_namespace="users",tiercache_operation="Get",tiercache_read_result="local"} 3
	// tiercache_subscription_events_total{tiercache_namespace="users",tiercache_subscription_state="Subscribed"} 1
	// tiercache_subscription_up{tiercache_namespace="users"} 1
}
