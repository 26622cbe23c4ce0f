package vps

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"gopkg.in/yaml.v3"
)

// ReleaseFile is the file each release commit holds: the image set it deploys.
const ReleaseFile = "release.yaml"

// releaseBranch is the branch CreateRepo writes and HEAD points at.
const releaseBranch = plumbing.ReferenceName("refs/heads/main")

// releaseHeader is the first line of every ReleaseFile.
const releaseHeader = "# PocketBrain release: the image set this commit deploys\n"

// Image is one artifact of a release.
type Image struct {
	Ref string `yaml:"ref"`
	ID  string `yaml:"id"` // "sha256:<64 hex>"
}

// Release is one commit's content.
type Release struct {
	Name     string           `yaml:"name"`     // e.g. "release under test"
	Revision string           `yaml:"revision"` // the build revision the server binary reports
	Images   map[string]Image `yaml:"images"`   // role ("server", "worker", ...) → image
}

var imageIDRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// Marshal renders the release as ReleaseFile content (roles sorted, so the
// same release always gives the same blob).
func (r Release) Marshal() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(releaseHeader)
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("marshal release %q: %w", r.Name, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("marshal release %q: %w", r.Name, err)
	}
	return b.Bytes(), nil
}

// ParseRelease reads ReleaseFile content strictly: an unknown field is a
// typo that would otherwise deploy the wrong image set silently.
func ParseRelease(b []byte) (Release, error) {
	var r Release
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&r); err != nil {
		if errors.Is(err, io.EOF) {
			return Release{}, fmt.Errorf("%s is empty (it needs name, revision and images)", ReleaseFile)
		}
		return Release{}, fmt.Errorf("%s: %v (known fields: name, revision, images.<role>.ref, images.<role>.id; fix or remove the field)", ReleaseFile, err)
	}
	if err := r.validate(); err != nil {
		return Release{}, err
	}
	return r, nil
}

// validate names the first missing or malformed field and how to fix it.
func (r Release) validate() error {
	if r.Name == "" {
		return fmt.Errorf("%s: field name is missing (set name:, e.g. \"release under test\")", ReleaseFile)
	}
	if r.Revision == "" {
		return fmt.Errorf("%s: field revision is missing (set revision: to the build revision the server binary reports)", ReleaseFile)
	}
	if len(r.Images) == 0 {
		return fmt.Errorf("%s: field images is missing or empty (list at least one role, e.g. images.server with ref and id)", ReleaseFile)
	}
	roles := make([]string, 0, len(r.Images))
	for role := range r.Images {
		roles = append(roles, role)
	}
	sort.Strings(roles)
	for _, role := range roles {
		img := r.Images[role]
		if role == "" {
			return fmt.Errorf("%s: images has an empty role name (name the role, e.g. server)", ReleaseFile)
		}
		if img.Ref == "" {
			return fmt.Errorf("%s: field images.%s.ref is missing (set it to the image reference, e.g. pocketbrain/server:tag)", ReleaseFile, role)
		}
		if !imageIDRE.MatchString(img.ID) {
			return fmt.Errorf("%s: field images.%s.id is %q, not sha256:<64 lowercase hex> (set it to the image ID, e.g. from docker image inspect --format {{.Id}})", ReleaseFile, role, img.ID)
		}
	}
	return nil
}

// releaseAuthor signs every release commit.
func releaseAuthor(when time.Time) object.Signature {
	return object.Signature{Name: "pocketbrain chaos harness", Email: "harness@pocketbrain.invalid", When: when}
}

// releaseEpoch dates the first release commit; later ones follow a minute
// apart. Fixed dates make the same releases give the same SHAs on every run.
var releaseEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// CreateRepo makes a bare repository at dir (which must not exist or be
// empty) whose branch main has one commit per release, in order, each tree
// holding ReleaseFile only. It returns the commit SHAs in order.
func CreateRepo(dir string, releases []Release) ([]string, error) {
	if len(releases) == 0 {
		return nil, errors.New("vps.CreateRepo: no releases (pass at least one)")
	}
	if err := checkEmptyDir(dir); err != nil {
		return nil, err
	}
	repo, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: releaseBranch},
		Bare:        true,
	})
	if err != nil {
		return nil, fmt.Errorf("init release repository %s: %w", dir, err)
	}
	st := repo.Storer

	var (
		shas   []string
		parent plumbing.Hash
	)
	for i, r := range releases {
		if err := r.validate(); err != nil {
			return nil, fmt.Errorf("release %d (%q): %w", i, r.Name, err)
		}
		content, err := r.Marshal()
		if err != nil {
			return nil, err
		}
		blob, err := storeBlob(st, content)
		if err != nil {
			return nil, fmt.Errorf("release repository %s: store %s: %w", dir, ReleaseFile, err)
		}
		tree := &object.Tree{Entries: []object.TreeEntry{{Name: ReleaseFile, Mode: filemode.Regular, Hash: blob}}}
		treeHash, err := storeObject(st, tree)
		if err != nil {
			return nil, fmt.Errorf("release repository %s: store tree: %w", dir, err)
		}
		sig := releaseAuthor(releaseEpoch.Add(time.Duration(i) * time.Minute))
		commit := &object.Commit{
			Author:    sig,
			Committer: sig,
			Message:   fmt.Sprintf("release: %s (revision %s)\n", r.Name, r.Revision),
			TreeHash:  treeHash,
		}
		if !parent.IsZero() {
			commit.ParentHashes = []plumbing.Hash{parent}
		}
		parent, err = storeObject(st, commit)
		if err != nil {
			return nil, fmt.Errorf("release repository %s: store commit: %w", dir, err)
		}
		shas = append(shas, parent.String())
	}

	if err := st.SetReference(plumbing.NewHashReference(releaseBranch, parent)); err != nil {
		return nil, fmt.Errorf("release repository %s: set %s: %w", dir, releaseBranch, err)
	}
	if err := st.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, releaseBranch)); err != nil {
		return nil, fmt.Errorf("release repository %s: set HEAD: %w", dir, err)
	}
	return shas, nil
}

// checkEmptyDir refuses to write a repository over anything already there.
func checkEmptyDir(dir string) error {
	if dir == "" {
		return errors.New("vps.CreateRepo: empty dir (pass a new directory for the release repository)")
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("release repository dir %s: %w (pass a new or empty directory)", dir, err)
	case len(entries) > 0:
		return fmt.Errorf("release repository dir %s is not empty (pass a new or empty directory, e.g. t.TempDir()/release.git)", dir)
	}
	return nil
}

func storeBlob(st storer.EncodedObjectStorer, content []byte) (plumbing.Hash, error) {
	obj := st.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	obj.SetSize(int64(len(content)))
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := w.Write(content); err != nil {
		_ = w.Close()
		return plumbing.ZeroHash, err
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	return st.SetEncodedObject(obj)
}

// encoder is an object (tree, commit) that serialises itself.
type encoder interface {
	Encode(plumbing.EncodedObject) error
}

func storeObject(st storer.EncodedObjectStorer, o encoder) (plumbing.Hash, error) {
	obj := st.NewEncodedObject()
	if err := o.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return st.SetEncodedObject(obj)
}
