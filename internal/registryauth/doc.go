// Package registryauth finds the credentials for an image's registry among
// configured entries: a user name and password given outright, or a Docker
// config file (config.json) whose auths, credsStore or credHelpers hold
// them, the helpers being docker-credential-* programs on PATH, as the
// docker CLI runs them. Secrets stay in memory: nothing here logs them.
package registryauth
