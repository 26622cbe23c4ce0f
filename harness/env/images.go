package env

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
)

// Images maps each role to its image reference. Every reference can be overridden
// from the environment (PB_IMAGE_<ROLE>), so a team can point the same suites at its
// own images as long as they honour docs/CONTRACTS.md.
type Images map[Role]string

var defaultImages = Images{
	Postgres:  "pocketbrain-local/postgres:15",
	Redis:     "pocketbrain-local/redis:7",
	KV:        "pocketbrain-local/redis:7",
	Toxiproxy: "pocketbrain-local/toxiproxy:2.12.0",
	Server:    "pocketbrain-local/server:dev",
	Worker:    "pocketbrain-local/worker:dev",
	Provider:  "pocketbrain-local/provider:dev",
	Clients:   "pocketbrain-local/clients:dev",
	VPSHost:   "pocketbrain-local/vpshost:bookworm",
}

// ImageEnvVar is the variable that overrides the image of a role.
func ImageEnvVar(r Role) string { return "PB_IMAGE_" + strings.ToUpper(string(r)) }

// ImagesFromEnv returns the default images with every PB_IMAGE_* override applied.
func ImagesFromEnv() Images {
	out := Images{}
	for role, ref := range defaultImages {
		if v := strings.TrimSpace(os.Getenv(ImageEnvVar(role))); v != "" {
			ref = v
		}
		out[role] = ref
	}
	return out
}

// CheckImages fails with one error naming every missing image and the fix, before any
// container starts: there is no registry to pull from, so a missing image is final.
func (d *Docker) CheckImages(ctx context.Context, imgs Images, roles []Role) (map[Role]string, error) {
	ids := map[Role]string{}
	var missing []string
	for _, r := range roles {
		ref, ok := imgs[r]
		if !ok || ref == "" {
			missing = append(missing, fmt.Sprintf("%s (no image configured)", r))
			continue
		}
		id, err := d.ImageID(ctx, ref)
		if err != nil {
			missing = append(missing, fmt.Sprintf("%s=%s", r, ref))
			continue
		}
		ids[r] = id
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("images not found in the local Docker engine: %s; build them with `make images`, or point %s at an image you have (no registry is used)",
			strings.Join(missing, ", "), "PB_IMAGE_<ROLE>")
	}
	return ids, nil
}

// ImageExposedPorts lists the ports a local image's EXPOSE names, e.g. "6379/tcp".
func (d *Docker) ImageExposedPorts(ctx context.Context, ref string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout.DockerCall)
	defer cancel()
	res, err := d.cli.ImageInspect(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	var ports []string
	if res.Config != nil {
		for p := range res.Config.ExposedPorts {
			ports = append(ports, string(p))
		}
	}
	slices.Sort(ports)
	return ports, nil
}
