package main

import (
	"os"

	"github.com/dstate-go/dstate/cmd/dstatectl/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args, os.Stdout, os.Stderr)) }
