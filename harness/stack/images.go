package stack

import (
	"context"

	"github.com/pocketbrain/chaos/harness/env"
	"github.com/pocketbrain/chaos/harness/program"
)

// CheckDeployImages fails, before any container starts, when the local Docker engine
// lacks an image a row of prog deploys (config/deploy_image) for one of roles (nil:
// all). Such images are never pulled; the error names each one, its rows and the fix.
// Up calls it; a caller may call it earlier too, e.g. beside Preflight.
func CheckDeployImages(ctx context.Context, prog *program.Program, roles []env.Role) error {
	if len(prog.DeployImages()) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, PreflightWithin)
	defer cancel()
	d, err := env.NewDocker(ctx, env.DefaultTimeouts())
	if err != nil {
		return err
	}
	defer d.Close()
	return prog.CheckDeployImages(ctx, d.ImageID, roles)
}
