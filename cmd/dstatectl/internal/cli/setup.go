package cli

import ucli "github.com/urfave/cli/v2"

// setup returns the agent client and the output format every command that
// talks to an agent needs.
func setup(c *ucli.Context) (*client, string, error) {
	format, err := outputFormat(c)
	if err != nil {
		return nil, "", err
	}
	cl, err := newClient(c)
	if err != nil {
		return nil, "", err
	}
	return cl, format, nil
}
