// Package gcpace sets how far the Go heap grows between collections in
// Berth's binaries, the provider and berthd, unless GOGC says otherwise.
package gcpace
