package api

// ImageResolveResponse answers images/resolve (the request is a
// backend.ImageRequest): the digest the tag names now, "" for an image
// built on the engines.
type ImageResolveResponse struct {
	RepoDigest string
}
