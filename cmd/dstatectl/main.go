// Command dstatectl runs and inspects dstate clusters. See internal/cli for
// its commands.
package main

import (
	"os"

	"github.com/dstate-go/dstate/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args, os.Stdout, os.Stderr)) }
