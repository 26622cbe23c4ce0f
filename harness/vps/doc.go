// Package vps is the harness's side of the "VPS host": the per-run SSH keys,
// an SSH client that pins the host key, the git operations the release gate
// runs on the host's deploy checkout, and the release repository the harness
// creates on its own disk with go-git.
package vps
