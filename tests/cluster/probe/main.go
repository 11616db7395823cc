// Command probe is the workload of the local cluster's acceptance tests, packed FROM scratch
// into an image built on the test machine:
//
//	probe serve ADDR          answer every HTTP request with "probe <hostname>"
//	probe lookup NAME...      resolve each name through the pod's resolv.conf, print "NAME IP..."
//	probe write FILE TEXT     write TEXT to FILE
//	probe cat FILE            print FILE
//	probe chown UID:GID DIR   hand DIR to UID:GID (init container of a host-path volume)
//	probe sleep               block until terminated
//	probe get URL             print the body of an HTTP GET of URL (3 s timeout); exit 1 on failure
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: probe serve|lookup|write|cat|chown|sleep|get ...")
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "serve":
		serve(argOr(args, 0, ":8080"))
	case "lookup":
		lookup(args)
	case "write":
		if len(args) != 2 {
			fail("usage: probe write FILE TEXT")
		}
		if err := os.WriteFile(args[0], []byte(args[1]), 0o644); err != nil {
			fail(err.Error())
		}
	case "cat":
		data, err := os.ReadFile(argOr(args, 0, ""))
		if err != nil {
			fail(err.Error())
		}
		fmt.Print(string(data))
	case "chown":
		chown(args)
	case "sleep":
		waitForSignal()
	case "get":
		get(argOr(args, 0, ""))
	default:
		fail("unknown command " + os.Args[1])
	}
}

func argOr(args []string, i int, fallback string) string {
	if len(args) > i {
		return args[i]
	}
	return fallback
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "probe:", msg)
	os.Exit(1)
}

func waitForSignal() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	<-signals
}

func serve(addr string) {
	host, _ := os.Hostname()
	server := &http.Server{
		Addr:              addr,
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, "probe %s\n", host)
		}),
	}
	go func() {
		waitForSignal()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = server.Shutdown(ctx)
	}()
	if err := server.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		fail(err.Error())
	}
}

func lookup(names []string) {
	resolver := &net.Resolver{PreferGo: true}
	status := 0
	for _, name := range names {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		addrs, err := resolver.LookupHost(ctx, name)
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "probe: %s: %v\n", name, err)
			status = 1
			continue
		}
		fmt.Printf("%s %s\n", name, strings.Join(addrs, " "))
	}
	os.Exit(status)
}

func chown(args []string) {
	if len(args) != 2 {
		fail("usage: probe chown UID:GID DIR")
	}
	ids := strings.SplitN(args[0], ":", 2)
	if len(ids) != 2 {
		fail("usage: probe chown UID:GID DIR")
	}
	uid, err1 := strconv.Atoi(ids[0])
	gid, err2 := strconv.Atoi(ids[1])
	if err1 != nil || err2 != nil {
		fail("UID and GID must be numbers")
	}
	if err := os.Chown(args[1], uid, gid); err != nil {
		fail(err.Error())
	}
}

func get(url string) {
	client := &http.Client{Timeout: 3 * time.Second}
	response, err := client.Get(url)
	if err != nil {
		fail(err.Error())
	}
	defer response.Body.Close()
	body, err := io.ReadAll(response.Body)
	if err != nil {
		fail(err.Error())
	}
	fmt.Print(string(body))
	if response.StatusCode != http.StatusOK {
		fail(response.Status)
	}
}
