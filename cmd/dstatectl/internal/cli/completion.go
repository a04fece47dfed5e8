package cli

import (
	"fmt"
	"io"
	"strings"

	ucli "github.com/urfave/cli/v2"
)

// complete answers --generate-bash-completion (EnableBashCompletion): the
// subcommands of a group, or the flags of a leaf command. Unlike urfave's
// default it reads nothing from os.Args, so it behaves the same in tests.
func complete(c *ucli.Context) {
	cmd := c.Command
	if cmd == nil {
		return
	}
	w := c.App.Writer
	if len(cmd.Subcommands) > 0 {
		for _, s := range cmd.Subcommands {
			if !s.Hidden && s.Name != "help" {
				fmt.Fprintln(w, s.Name)
			}
		}
		return
	}
	for _, f := range cmd.VisibleFlags() {
		name := f.Names()[0]
		if name == "help" {
			continue
		}
		fmt.Fprintln(w, "--"+strings.TrimPrefix(name, "-"))
	}
}

// completionScripts are the shell scripts `dstatectl completion` prints:
// each asks dstatectl itself for the words that may follow
// (--generate-bash-completion, answered by complete).
var completionScripts = map[string]string{
	"bash": `# dstatectl completion for bash: source it, e.g. from ~/.bashrc:
#   source <(dstatectl completion bash)
_dstatectl_complete() {
  local cur="${COMP_WORDS[COMP_CWORD]}"
  local words=("${COMP_WORDS[@]:0:COMP_CWORD}")
  if [[ "$cur" == -* ]]; then words+=("$cur"); fi
  local opts
  opts=$("${words[@]}" --generate-bash-completion 2>/dev/null)
  COMPREPLY=($(compgen -W "${opts}" -- "${cur}"))
}
complete -o bashdefault -o default -F _dstatectl_complete dstatectl
`,
	"zsh": `#compdef dstatectl
# dstatectl completion for zsh: source it, e.g. from ~/.zshrc:
#   source <(dstatectl completion zsh)
_dstatectl() {
  local -a opts
  local cur=${words[-1]}
  if [[ "$cur" == -* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion 2>/dev/null)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
  fi
  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}
compdef _dstatectl dstatectl
`,
	"fish": `# dstatectl completion for fish: save it as
# ~/.config/fish/completions/dstatectl.fish, or: dstatectl completion fish | source
function __dstatectl_complete
    set -l words (commandline -opc)
    set -l cur (commandline -ct)
    if string match -q -- '-*' $cur
        set -a words $cur
    end
    $words --generate-bash-completion 2>/dev/null
end
complete -c dstatectl -f -a '(__dstatectl_complete)'
`,
}

func completionCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script for bash, zsh or fish",
		UsageText: "dstatectl completion bash|zsh|fish",
		ArgsUsage: "bash|zsh|fish",
		Description: "Prints a script that completes dstatectl's commands and options in the shell named.\n\n" +
			"Example:\n" +
			"   dstatectl completion bash > /etc/bash_completion.d/dstatectl\n" +
			"   source <(dstatectl completion zsh)\n" +
			"   dstatectl completion fish > ~/.config/fish/completions/dstatectl.fish",
		Action: func(c *ucli.Context) error {
			if err := checkArgs(c, 1, 1, "one shell (bash, zsh or fish)"); err != nil {
				return err
			}
			script, ok := completionScripts[c.Args().First()]
			if !ok {
				return usageErrorf("completion: %q is not bash, zsh or fish", c.Args().First())
			}
			_, err := io.WriteString(c.App.Writer, script)
			return err
		},
	}
}
