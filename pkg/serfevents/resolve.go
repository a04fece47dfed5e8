package serfevents

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"
)

// Resolver looks up the IP addresses of a host name. *net.Resolver is one;
// Config.Resolver lets a caller (or a test) use another.
type Resolver interface {
	// LookupIPAddr returns the IP addresses of host; it may block until
	// ctx ends.
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// resolveTimeout bounds the lookups of one join round.
const resolveTimeout = 5 * time.Second

// resolveSeeds expands the seeds whose host is a name into one "ip:port"
// per address the name resolves to, in the resolver's order and without
// duplicates; seeds given as IP addresses are kept as they are. Each join
// round resolves again, so a name whose addresses change (a Kubernetes
// headless service whose pods come and go) is followed. The error names
// every seed that could not be resolved; addrs holds what could.
func (m *Membership) resolveSeeds(ctx context.Context, seeds []string) (addrs []string, err error) {
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	var errs []error
	add := func(a string) {
		if !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	for _, seed := range seeds {
		host, port, err := net.SplitHostPort(seed)
		if err != nil {
			errs = append(errs, fmt.Errorf("seed %q: %w", seed, err))
			continue
		}
		if ip := net.ParseIP(host); ip != nil {
			add(seed)
			continue
		}
		ips, err := m.resolver().LookupIPAddr(ctx, host)
		if err == nil && len(ips) == 0 {
			err = errors.New("no address")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("resolve seed %q: %w", seed, err))
			continue
		}
		for _, ip := range ips {
			add(net.JoinHostPort(ip.String(), port))
		}
	}
	return addrs, errors.Join(errs...)
}

func (m *Membership) resolver() Resolver {
	if m.cfg.Resolver != nil {
		return m.cfg.Resolver
	}
	return net.DefaultResolver
}
