// Command flower is the Flower-CDN operator and researcher CLI.
//
//	flower sim [flags]       run the simulator (Flower-CDN vs Squirrel baselines vs origin-only)
//	flower loadtest [flags]  load a bootstrap service with simulated peers
//	flower keygen [flags]    make a site's Ed25519 key pair
//	flower sign [flags]      sign a static site's files for Flower-CDN
//	flower peer [flags]      run a headless peer (a seeder) until interrupted
//	flower get URL [flags]   fetch one object through Flower-CDN
//	flower bench-transfer    measure P2P transfers between two native peers
//	flower origin [flags]    serve the demo site (a signed site directory) on loopback
//	flower demo-assets       generate the demo site's pictures and video
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: flower <command> [flags]

commands:
  sim        run the simulator: Flower-CDN, Squirrel and origin-only on one trace
  loadtest   load a bootstrap service with simulated peers
  keygen     make a site's Ed25519 key pair (private key file, public key on stdout)
  sign       sign a static site: writes its well-known document and signed manifest
  peer       run a headless peer of a site (a seeder next to the origin) until interrupted
  get        fetch one object through Flower-CDN, verified, and say where it came from
  bench-transfer  measure WebRTC transfers between two native peers on 127.0.0.1
  origin     serve the demo site directory on a loopback address, with an access log
  demo-assets  generate the demo site's pictures and video (deterministic)

Run "flower <command> -h" for the flags of a command.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "flower:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("missing command")
	}
	switch args[0] {
	case "sim":
		return runSim(ctx, args[1:], stdout, stderr)
	case "loadtest":
		return runLoadtest(ctx, args[1:], stdout, stderr)
	case "keygen":
		return runKeygen(ctx, args[1:], stdout, stderr)
	case "sign":
		return runSign(ctx, args[1:], stdout, stderr)
	case "peer":
		return runPeer(ctx, args[1:], stdout, stderr)
	case "get":
		return runGet(ctx, args[1:], stdout, stderr)
	case "bench-transfer":
		return runBenchTransfer(ctx, args[1:], stdout, stderr)
	case "origin":
		return runOrigin(ctx, args[1:], stdout, stderr)
	case "demo-assets":
		return runDemoAssets(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
