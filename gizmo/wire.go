package main

import "context"

// wireServices creates the protocol services and connects their
// observations to the state and their plans to the plan functions.
func wireServices(ctx context.Context, d *daemon, cfg config, wan, lan string) error {
	if err := wireWeb(d, cfg); err != nil {
		return err
	}
	return nil
}
