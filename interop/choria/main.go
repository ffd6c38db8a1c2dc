// Command choria runs a real go-choria server or broker for this project's
// interoperability tests and benchmarks.
//
// Why not go-choria's own CLI (package cmd)? It imports choria-io/appbuilder
// v0.17.1, which the Go module proxy available to this project does not serve
// (and no served version is API-compatible), so a build through it cannot be
// reproduced in CI. This entry point drives the same public go-choria APIs
// that `choria server run` and `choria broker run` use, and registers the
// plugins that go-choria's `go generate` step would have registered.
//
// Usage:
//
//	choria server run --config FILE [--provisioning-jwt FILE]
//	choria broker run --config FILE
//	choria jwt keys SEED-FILE PUBLIC-FILE
//	choria jwt prov JWT-FILE SIGNING-KEY --token T --urls U [--insecure=false] [--protocol-v2] [--upgrade] [--default]
//
// The arguments are kept in go-choria's form because choria_provision#restart
// re-executes os.Args as they are.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/choria-io/go-choria/broker/network"
	"github.com/choria-io/go-choria/build"
	"github.com/choria-io/go-choria/choria"
	"github.com/choria-io/go-choria/config"
	"github.com/choria-io/go-choria/plugin"
	golangmco "github.com/choria-io/go-choria/providers/agent/mcorpc/golang"
	"github.com/choria-io/go-choria/providers/agent/mcorpc/golang/provision"
	"github.com/choria-io/go-choria/providers/provtarget"
	"github.com/choria-io/go-choria/server"
	"github.com/choria-io/tokens"
	log "github.com/sirupsen/logrus"
)

func main() {
	if err := plugin.Register("golangmco", golangmco.ChoriaPlugin()); err != nil {
		log.Fatal(err)
	}
	if err := plugin.Register("choria_provision", provision.ChoriaPlugin()); err != nil {
		log.Fatal(err)
	}

	if len(os.Args) >= 3 && os.Args[1] == "jwt" {
		if err := runJWT(os.Args[2], os.Args[3:]); err != nil {
			log.Fatalf("choria jwt %s: %s", os.Args[2], err)
		}
		return
	}
	if len(os.Args) < 3 || os.Args[2] != "run" {
		fmt.Fprintln(os.Stderr, "usage: choria server|broker run --config FILE, or choria jwt keys|prov ...")
		os.Exit(2)
	}

	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	configFile := fs.String("config", "", "configuration file")
	// One binary serves many servers, each with its own provisioning JWT;
	// the flag overrides the path linked in with -X build.ProvisionJWTFile.
	jwtFile := fs.String("provisioning-jwt", "", "provisioning JWT file (overrides the build default)")
	fs.Parse(os.Args[3:])
	if *configFile == "" {
		log.Fatal("--config is required")
	}
	if *jwtFile != "" {
		build.ProvisionJWTFile = *jwtFile
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go stopOnSignal(cancel)

	wg := &sync.WaitGroup{}
	var err error
	switch os.Args[1] {
	case "server":
		err = runServer(ctx, wg, *configFile)
	case "broker":
		err = runBroker(ctx, wg, *configFile)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		log.Fatalf("choria %s: %s", os.Args[1], err)
	}
	wg.Wait()
}

// stopOnSignal cancels the run on SIGINT/SIGTERM and exits if shutdown takes
// longer than a few seconds, as go-choria's CLI does.
func stopOnSignal(cancel func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	<-sigs
	cancel()
	time.AfterFunc(5*time.Second, func() { os.Exit(1) })
}

func runServer(ctx context.Context, wg *sync.WaitGroup, configFile string) error {
	bi := &build.Info{}
	if len(bi.AgentProviders()) == 0 {
		return errors.New("no agent providers registered")
	}

	cfg, err := config.NewSystemConfig(configFile, true)
	if err != nil {
		return fmt.Errorf("could not parse configuration: %w", err)
	}
	provtarget.Configure(ctx, cfg, log.WithField("component", "provtarget"))
	// As go-choria's `server run` (cmd/server_run.go, Configure, the case of an
	// existing file): a JWT made with `--default` replaces the file's
	// configuration by the provisioning defaults (identity from the host name)
	// whenever the file asks for provisioning, which is what a file rewritten
	// by choria_provision#reprovision does. Without `--default` the file is
	// kept, with its identity and file security paths.
	if shouldProvision(bi, cfg) {
		removeServerCredentials(cfg)
		log.Warnf("Switching to provisioning configuration due to build defaults and server.provision configuration setting")
		cfg, err = provisionConfig(configFile)
		if err != nil {
			return err
		}
	}
	cfg.ApplyBuildSettings(bi)

	fw, err := choria.NewWithConfig(cfg)
	if err != nil {
		return fmt.Errorf("could not initialise Choria: %w", err)
	}
	fw.ConfigureProvisioning(ctx)

	instance, err := server.NewInstance(fw)
	if err != nil {
		return fmt.Errorf("could not create Choria Server instance: %w", err)
	}
	log.Infof("Choria Server version %s starting with config %s", bi.Version(), cfg.ConfigFile)

	wg.Add(1)
	return instance.Run(ctx, wg)
}

func runBroker(ctx context.Context, wg *sync.WaitGroup, configFile string) error {
	bi := &build.Info{}
	cfg, err := config.NewSystemConfig(configFile, true)
	if err != nil {
		return fmt.Errorf("could not parse configuration: %w", err)
	}
	cfg.ApplyBuildSettings(bi)
	if !cfg.Choria.BrokerNetwork {
		return errors.New("plugin.choria.broker_network must be true")
	}
	cfg.SoftShutdownTimeout = cfg.Choria.NetworkSoftShutdownTimeout

	fw, err := choria.NewWithConfig(cfg)
	if err != nil {
		return fmt.Errorf("could not initialise Choria: %w", err)
	}
	srv, err := network.NewServer(fw, bi, false)
	if err != nil {
		return fmt.Errorf("could not set up Choria Network Broker: %w", err)
	}
	log.Infof("Choria Broker version %s starting with config %s", bi.Version(), cfg.ConfigFile)

	wg.Add(1)
	go srv.Start(ctx, wg)
	return nil
}

// shouldProvision is go-choria v0.30.2's serverRunCommand.shouldProvision.
func shouldProvision(bi *build.Info, cfg *config.Config) bool {
	if !cfg.InitiatedByServer || (bi.ProvisionBrokerURLs() == "" && bi.ProvisionJWTFile() == "") {
		return false
	}
	if cfg.Choria.ServerAnonTLS && cfg.Choria.ServerTokenSeedFile != "" && cfg.Choria.ServerTokenFile != "" {
		if tokenAndSeedStale(cfg.Choria.ServerTokenFile, cfg.Choria.ServerTokenSeedFile) {
			return true
		}
	}
	if cfg.Choria.SecurityProvider == "choria" {
		if tokenAndSeedStale(cfg.Choria.ChoriaSecurityTokenFile, cfg.Choria.ChoriaSecuritySeedFile) {
			return true
		}
	}
	if cfg.HasOption("plugin.choria.server.provision") {
		if !cfg.Choria.Provision {
			return false
		}
		log.Warnf("plugin.choria.server.provision is true, reprovisioning")
	}
	return bi.ProvisionDefault()
}

// tokenAndSeedStale is go-choria v0.30.2's shouldProvisionTokenAndSeed.
func tokenAndSeedStale(tokenFile string, seedFile string) bool {
	if _, err := os.Stat(seedFile); err != nil {
		log.Warnf("Server seed file %s does not exist, reprovisioning", seedFile)
		return true
	}
	if _, err := os.Stat(tokenFile); err != nil {
		log.Warnf("Server token file %s does not exist, reprovisioning", tokenFile)
		return true
	}
	token, err := tokens.ParseServerTokenFileUnverified(tokenFile)
	if err != nil {
		log.Warnf("Could not parse server JWT token %s, reprovisioning: %v", tokenFile, err)
		return true
	}
	matched, err := token.IsMatchingSeedFile(seedFile)
	if err != nil || !matched {
		log.Warnf("Public key in the JWT file %s does not match the seed file %s, reprovisioning", tokenFile, seedFile)
		return true
	}
	if token.IsExpired() {
		log.Warnf("The existing server token %s is expired, reprovisioning", tokenFile)
		return true
	}
	return false
}

// removeServerCredentials: what `server run` deletes before it provisions again.
func removeServerCredentials(cfg *config.Config) {
	for _, f := range []string{cfg.Choria.ServerTokenSeedFile, cfg.Choria.ServerTokenFile, cfg.Choria.ChoriaSecuritySeedFile, cfg.Choria.ChoriaSecurityTokenFile} {
		if f != "" {
			os.Remove(f)
		}
	}
}

// provisionConfig is go-choria v0.30.2's serverRunCommand.provisionConfig.
func provisionConfig(f string) (*config.Config, error) {
	cfg, err := config.NewDefaultSystemConfig(true)
	if err != nil {
		return nil, fmt.Errorf("could not create default configuration for provisioning: %s", err)
	}
	cfg.ConfigFile = f
	// set this to avoid calling into puppet on non puppet machines
	// later ConfigureProvisioning() will do all the right things
	cfg.Choria.SecurityProvider = "file"
	// in provision mode we do not yet have certs and stuff so we disable these checks
	cfg.DisableSecurityProviderVerify = true
	return cfg, nil
}
