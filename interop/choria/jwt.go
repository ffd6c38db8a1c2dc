package main

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/choria-io/go-choria/choria"
	"github.com/choria-io/tokens"
)

// runJWT makes the keys and provisioning tokens that `choria jwt keys` and
// `choria jwt prov` make, through the same choria-io/tokens calls.
func runJWT(action string, args []string) error {
	switch action {
	case "keys":
		if len(args) != 2 {
			return errors.New("usage: choria jwt keys SEED-FILE PUBLIC-FILE")
		}
		pub, _, err := choria.Ed25519KeyPairToFile(args[0])
		if err != nil {
			return err
		}
		return os.WriteFile(args[1], []byte(hex.EncodeToString(pub)), 0600)

	case "prov":
		fs := flag.NewFlagSet("prov", flag.ContinueOnError)
		insecure := fs.Bool("insecure", true, "disable TLS security during provisioning")
		token := fs.String("token", "", "token that guards the provisioning agent")
		urls := fs.String("urls", "", "comma-separated provisioning broker URLs")
		v2 := fs.Bool("protocol-v2", false, "use protocol version 2")
		upgrade := fs.Bool("upgrade", false, "allow server upgrades during provisioning")
		byDefault := fs.Bool("default", false, "provision by default: a server whose configuration asks for provisioning starts from the provisioning defaults")
		username := fs.String("username", "", "provisioning broker user")
		password := fs.String("password", "", "provisioning broker password")
		if len(args) < 2 {
			return errors.New("usage: choria jwt prov JWT-FILE SIGNING-KEY [flags]")
		}
		if err := fs.Parse(args[2:]); err != nil {
			return err
		}
		if *token == "" || *urls == "" {
			return errors.New("--token and --urls are required")
		}
		claims, err := tokens.NewProvisioningClaims(!*insecure, *byDefault, *token, *username, *password, strings.Split(*urls, ","), "", "", "", "choria", "", 365*24*time.Hour)
		if err != nil {
			return err
		}
		claims.ProtoV2 = *v2
		claims.AllowUpdate = *upgrade
		return tokens.SaveAndSignTokenWithKeyFile(claims, args[1], args[0], 0600)
	}
	return fmt.Errorf("unknown action %q", action)
}
