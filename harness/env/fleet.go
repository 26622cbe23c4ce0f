package env

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// FleetState is what the harness reads of the clients fleet's GET /state
// (docs/CONTRACTS.md, "Clients fleet"): one place for its shape, whoever reads it.
type FleetState struct {
	Paused  bool          `json:"paused"`
	Clients []ClientState `json:"clients"`
}

// ClientState is one simulated client as /state shows it.
type ClientState struct {
	Client       string `json:"client"`
	QueueDepth   int    `json:"queueDepth"`
	Blocked      bool   `json:"blocked"`
	SyncState    string `json:"syncState"`
	Cursor       int64  `json:"cursor"`
	OplogPending int    `json:"oplogPending"`
	// PendingEdits are the mutations in the client's sync queue, oldest first.
	PendingEdits []PendingEdit `json:"pendingEdits"`
	CursorResets int           `json:"cursorResets"`
	LastSyncOK   *time.Time    `json:"lastSyncOk"`
	LastSyncErr  string        `json:"lastSyncError"`
	// Resync is set while a paged full sync is under way.
	Resync *struct {
		After    int64 `json:"after"`
		Pages    int   `json:"pages"`
		Captures int   `json:"captures"`
	} `json:"resync,omitempty"`
}

// PendingEdit is one queued mutation as /state shows it.
type PendingEdit struct {
	MutationID string `json:"mutationId"`
	CaptureID  string `json:"captureId"`
	Kind       string `json:"kind"`
	Value      string `json:"value"`
}

// Fleet reads the clients fleet's /state.
func (e *Environment) Fleet(ctx context.Context) (FleetState, error) {
	req := Request{Method: http.MethodGet, Path: "/state", Timeout: e.cfg.Timeouts.FleetCall}
	resp, err := e.Do(ctx, Clients, req)
	if err != nil {
		return FleetState{}, err
	}
	if err := resp.Err(Clients, req); err != nil {
		return FleetState{}, err
	}
	var st FleetState
	if err := json.Unmarshal(resp.Body, &st); err != nil {
		return FleetState{}, fmt.Errorf("clients /state: %w", err)
	}
	return st, nil
}
