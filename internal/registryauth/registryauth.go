package registryauth

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/distribution/reference"
	"github.com/docker/cli/cli/config/configfile"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
)

// Entry gives the credentials of one registry: Username and Password, or
// else the Docker config file ConfigFile ("" means DefaultConfigFile).
type Entry struct {
	Address    string `json:"address"` // e.g. "registry.example.com:5000"; a scheme and path are ignored
	Username   string `json:"username,omitempty"`
	Password   string `json:"password,omitempty"`
	ConfigFile string `json:"config_file,omitempty"`
}

// Source answers with the credentials for an image, by its registry.
type Source struct {
	byHost map[string]found
}

// found is one entry, ready: credentials, or the config file holding them.
type found struct {
	auth   *engine.RegistryAuth
	config *configfile.ConfigFile
}

// New checks the entries and reads their config files, so that a wrong
// entry is reported before anything is pulled. Credential helpers run
// later, when an image of their registry is looked up.
func New(entries []Entry) (*Source, error) {
	s := &Source{byHost: map[string]found{}}
	for i, entry := range entries {
		host := Host(entry.Address)
		switch {
		case host == "":
			return nil, fmt.Errorf("entry %d: address is empty: give the registry's host, e.g. registry.example.com:5000", i)
		case (entry.Username == "") != (entry.Password == ""):
			return nil, fmt.Errorf("registry %s: give username and password together", entry.Address)
		case entry.Username != "" && entry.ConfigFile != "":
			return nil, fmt.Errorf("registry %s: give either username and password or config_file, not both", entry.Address)
		}
		if _, dup := s.byHost[host]; dup {
			return nil, fmt.Errorf("registry %s is given twice: keep one entry per registry", entry.Address)
		}
		if entry.Username != "" {
			s.byHost[host] = found{auth: &engine.RegistryAuth{ServerAddress: host, Username: entry.Username, Password: entry.Password}}
			continue
		}
		config, err := load(entry.ConfigFile)
		if err != nil {
			return nil, fmt.Errorf("registry %s: %w", entry.Address, err)
		}
		s.byHost[host] = found{config: config}
	}
	return s, nil
}

// DefaultConfigFile is the docker CLI's: $DOCKER_CONFIG/config.json, else
// ~/.docker/config.json.
func DefaultConfigFile() string {
	if dir := os.Getenv("DOCKER_CONFIG"); dir != "" {
		return filepath.Join(dir, "config.json")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(".docker", "config.json")
	}
	return filepath.Join(home, ".docker", "config.json")
}

func load(path string) (*configfile.ConfigFile, error) {
	if path == "" {
		path = DefaultConfigFile()
	}
	if rest, ok := strings.CutPrefix(path, "~/"); ok {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
		path = filepath.Join(home, rest)
	}
	file, err := os.Open(path) //nolint:gosec // the user names the file to read
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	defer file.Close()
	config := configfile.New(path)
	if err := config.LoadFromReader(file); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return config, nil
}

// Host is a registry address as image references name it: no scheme, no
// path, lower case; Docker Hub's many names are "docker.io".
func Host(address string) string {
	host := strings.ToLower(strings.TrimSpace(address))
	if _, rest, ok := strings.Cut(host, "://"); ok {
		host = rest
	}
	host, _, _ = strings.Cut(host, "/")
	switch host {
	case "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		return "docker.io"
	}
	return host
}

// ErrNoCredentials says that an entry's config file has nothing for its
// registry.
var ErrNoCredentials = errors.New("no credentials")

// For returns the credentials for image's registry, nil when no entry
// names that registry.
func (s *Source) For(image string) (*engine.RegistryAuth, error) {
	if s == nil || len(s.byHost) == 0 {
		return nil, nil
	}
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return nil, nil //nolint:nilerr // the engine reports a bad reference, naming the image
	}
	host := reference.Domain(named)
	entry, ok := s.byHost[host]
	switch {
	case !ok:
		return nil, nil
	case entry.auth != nil:
		return entry.auth, nil
	}
	key := host
	if host == "docker.io" {
		key = "https://index.docker.io/v1/" // where the docker CLI keeps Docker Hub's
	}
	got, err := entry.config.GetAuthConfig(key)
	if err != nil {
		return nil, fmt.Errorf("registry %s: credentials from %s: %w", host, entry.config.Filename, err)
	}
	if got.Username == "" && got.Password == "" && got.IdentityToken == "" {
		return nil, fmt.Errorf("registry %s: %w in %s (docker login %s writes them there)", host, ErrNoCredentials, entry.config.Filename, host)
	}
	return &engine.RegistryAuth{ServerAddress: host, Username: got.Username, Password: got.Password, IdentityToken: got.IdentityToken}, nil
}
