// Package provider is the Terraform glue of Berth: the provider block, the
// berth_pool and berth_container resources and the berth_pool data source.
// It holds no placement logic; every decision is delegated to a
// backend.Backend built once per provider instance in Configure.
package provider
