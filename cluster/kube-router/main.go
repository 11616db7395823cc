// Command kube-router runs kube-router's network policy controller, and nothing else of
// kube-router, as a node agent: the firewall-only mode (--run-firewall=true --run-router=false
// --run-service-proxy=false) with only that controller linked in. The BGP router, the IPVS
// service proxy, the load-balancer allocator, their dependencies (GoBGP, the Docker client,
// the AWS SDK) and net/http/pprof are not part of the binary, so their advisories cannot
// reach it (docs/network-policy.md). The health port serves /healthz alone. Flags are
// kube-router's own (pkg/options).
package main

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/cloudnativelabs/kube-router/v2/pkg/controllers/netpol"
	"github.com/cloudnativelabs/kube-router/v2/pkg/healthcheck"
	"github.com/cloudnativelabs/kube-router/v2/pkg/options"
	"github.com/cloudnativelabs/kube-router/v2/pkg/version"
	"github.com/spf13/pflag"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "kube-router: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	klog.InitFlags(nil)
	config := options.NewKubeRouterConfig()
	config.AddFlags(pflag.CommandLine)
	pflag.Parse()
	if err := flag.Set("logtostderr", "true"); err != nil {
		return err
	}
	if err := flag.Set("v", config.VLevel); err != nil {
		return err
	}
	switch {
	case config.HelpRequested:
		pflag.Usage()
		return nil
	case config.Version:
		version.PrintVersion(false)
		return nil
	}
	if err := firewallOnly(config); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("iptables and ipset need uid 0 (with CAP_NET_ADMIN)")
	}
	client, err := newClient(config)
	if err != nil {
		return err
	}
	version.PrintVersion(true)
	return runController(client, config)
}

// firewallOnly refuses every option that asks for a part of kube-router this binary lacks.
func firewallOnly(config *options.KubeRouterConfig) error {
	unsupported := map[string]bool{
		"--run-firewall=false":     !config.RunFirewall,
		"--run-router=true":        config.RunRouter,
		"--run-service-proxy=true": config.RunServiceProxy,
		"--run-loadbalancer=true":  config.RunLoadBalancer,
		"--metrics-port":           config.MetricsPort != 0,
		"--enable-pprof":           config.EnablePprof,
		"--cleanup-config":         config.CleanupConfig,
	}
	for option, set := range unsupported {
		if set {
			return fmt.Errorf("%s is not supported: this build runs only the network policy controller; "+
				"pass --run-router=false --run-service-proxy=false", option)
		}
	}
	return nil
}

func newClient(config *options.KubeRouterConfig) (kubernetes.Interface, error) {
	var restConfig *rest.Config
	var err error
	if config.Master != "" || config.Kubeconfig != "" {
		restConfig, err = clientcmd.BuildConfigFromFlags(config.Master, config.Kubeconfig)
	} else {
		restConfig, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("no API server configuration: %w", err)
	}
	return kubernetes.NewForConfig(restConfig)
}

// runController starts the health endpoint and the network policy controller, then waits for
// SIGINT or SIGTERM. The iptables rules and ipsets stay in place when it exits, so traffic
// stays filtered while the pod is replaced; the next start rebuilds them from the API.
func runController(client kubernetes.Interface, config *options.KubeRouterConfig) error {
	var wg sync.WaitGroup
	var ipsetMutex sync.Mutex
	stop := make(chan struct{})
	heartbeats := make(chan *healthcheck.ControllerHeartbeat, 10)

	health, err := healthcheck.NewHealthController(config)
	if err != nil {
		return err
	}
	serveHealth(health, config.HealthPort, stop, &wg)

	factory := informers.NewSharedInformerFactory(client, 0)
	pods := factory.Core().V1().Pods().Informer()
	namespaces := factory.Core().V1().Namespaces().Informer()
	policies := factory.Networking().V1().NetworkPolicies().Informer()
	factory.Start(stop)
	if err := waitForCaches(factory, stop, config.CacheSyncTimeout); err != nil {
		close(stop)
		return err
	}
	health.SetAlive()
	wg.Add(1)
	go health.RunCheck(heartbeats, stop, &wg)

	iptablesHandlers, ipsetHandlers, err := netpol.NewIPTablesHandlers(config)
	if err != nil {
		close(stop)
		return err
	}
	controller, err := netpol.NewNetworkPolicyController(client, config, pods, policies, namespaces,
		&ipsetMutex, iptablesHandlers, ipsetHandlers)
	if err != nil {
		close(stop)
		return err
	}
	for _, h := range []struct {
		informer cache.SharedIndexInformer
		handler  cache.ResourceEventHandler
	}{
		{pods, controller.PodEventHandler},
		{namespaces, controller.NamespaceEventHandler},
		{policies, controller.NetworkPolicyEventHandler},
	} {
		if _, err := h.informer.AddEventHandler(h.handler); err != nil {
			close(stop)
			return err
		}
	}
	wg.Add(1)
	go controller.Run(heartbeats, stop, &wg)

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	klog.Infof("network policy controller running; stopping on %v", <-signals)
	close(stop)
	wg.Wait()
	return nil
}

// serveHealth answers /healthz on the health port (0: off) until stop is closed. It uses a mux
// of its own: kube-router's health server serves http.DefaultServeMux, on which imported
// packages register handlers of their own (expvar's /debug/vars, from the Prometheus client).
func serveHealth(health *healthcheck.HealthController, port uint16, stop <-chan struct{}, wg *sync.WaitGroup) {
	if port == 0 {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", health.Handler)
	server := &http.Server{Addr: fmt.Sprintf(":%d", port), Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := server.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.Errorf("health server: %v", err)
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-stop
		if err := server.Close(); err != nil {
			klog.Errorf("health server: %v", err)
		}
	}()
}

func waitForCaches(factory informers.SharedInformerFactory, stop <-chan struct{}, timeout time.Duration) error {
	synced := make(chan struct{})
	go func() {
		factory.WaitForCacheSync(stop)
		close(synced)
	}()
	select {
	case <-synced:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("the informer caches did not sync within %s", timeout)
	}
}
