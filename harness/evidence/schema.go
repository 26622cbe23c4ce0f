package evidence

import (
	"time"
)

// SchemaVersion names the JSON layout written by this package. Bump the
// suffix for any change an older reader could misread (renamed or retyped
// fields); purely additive, optional fields keep the version.
const SchemaVersion = "pocketbrain.chaos/evidence/v1"

// Profiles.
const (
	ProfileFast    = "fast"
	ProfileRelease = "release"
)

// Verdict decisions.
const (
	DecisionGo         = "GO"
	DecisionNoGo       = "NO-GO"
	DecisionIncomplete = "INCOMPLETE"
)

// Status of a row.
type Status string

const (
	StatusRunning     Status = "running" // begun, not ended: the process stopped mid-row
	StatusPassed      Status = "passed"
	StatusFailed      Status = "failed"
	StatusSkipped     Status = "skipped"
	StatusInterrupted Status = "interrupted"
)

// Evaluation phases.
const (
	PhaseSteady    = "steady"
	PhaseFault     = "fault"
	PhaseRecovered = "recovered"
	PhaseControl   = "control"
)

// Series kinds.
const (
	KindSignal  = "signal"
	KindTrigger = "trigger"
)

// Gate step results.
const (
	GatePass    = "pass"
	GateFail    = "fail"
	GateSkipped = "skipped"
	GateNA      = "n/a"
)

// Data-loss verdicts (Jepsen's valid/invalid/unknown).
const (
	DataLossValid   = "valid"
	DataLossInvalid = "invalid"
	DataLossUnknown = "unknown"
)

// Run is the whole evidence of one harness run (or of several merged shards).
type Run struct {
	Schema      string    `json:"schema"`
	RunID       string    `json:"run_id"`
	Profile     string    `json:"profile"`
	TimeScale   TimeScale `json:"time_scale"`
	Started     time.Time `json:"started"`
	Ended       time.Time `json:"ended,omitzero"`
	Complete    bool      `json:"complete"`
	Interrupted bool      `json:"interrupted"`
	// InterruptReason says why the run stopped early (signal, panic, timeout).
	InterruptReason string     `json:"interrupt_reason,omitempty"`
	Provenance      Provenance `json:"provenance"`
	Verdict         Verdict    `json:"verdict"`
	// Plan is every item the run meant to run, written at its start (Recorder.SetPlan):
	// ComputeVerdict compares it with what the evidence shows ran. Absent in files from
	// before it existed.
	Plan     []PlannedItem   `json:"plan,omitempty"`
	Problems []string        `json:"problems,omitempty"`
	Dataset  *Dataset        `json:"dataset,omitempty"`
	Baseline []BaselineCheck `json:"baseline,omitempty"`
	Gate     []GateStep      `json:"gate,omitempty"`
	Rows     []Row           `json:"rows"`
	Control  *Window         `json:"control,omitempty"`
	Canary   *Window         `json:"canary,omitempty"`
	// PrometheusServer is the real Prometheus server beside the embedded engine.
	PrometheusServer *PrometheusServer `json:"prometheus_server,omitempty"`
	// Restorations are the steady-state checks after failed specs, in order.
	Restorations []Restoration `json:"restorations,omitempty"`
	Shards       []Shard       `json:"shards,omitempty"`
}

// Kinds of planned item.
const (
	PlanRow        = "row"        // a matrix row: ID is the row id
	PlanValidation = "validation" // a validation spec (recorded as a row): ID is VAL-n
	PlanBaseline   = "baseline"   // the baseline captures: ID is "baseline"
	PlanGate       = "gate"       // a release-gate step: ID is its number ("4")
	PlanControl    = "control"    // the no-fault control window: ID is "control"
	PlanCanary     = "canary"     // the canary window: ID is "canary"
)

// PlannedItem is one thing the run meant to run. What shows it ran: a row (Row.ID) for
// PlanRow and PlanValidation, at least one baseline check, the gate step with that number,
// the control or canary window.
type PlannedItem struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
	// Name is for readers (the gate step's or row's name); ComputeVerdict matches on Kind
	// and ID only.
	Name string `json:"name,omitempty"`
}

// Restoration is the steady-state check that follows a failed spec, and what was done
// to bring the stack back, so that a failed row never fails the next one.
type Restoration struct {
	Spec string    `json:"spec"`
	Rows []string  `json:"rows,omitempty"`
	At   time.Time `json:"at"`
	// Restored is false when steady state returned by itself (Actions is then empty).
	Restored    bool     `json:"restored"`
	Reason      string   `json:"reason"`
	Actions     []string `json:"actions,omitempty"`
	SteadyAfter bool     `json:"steady_after"`
	Took        Duration `json:"took_ms"`
}

// Dataset is the store the rows ran on: captures seeded before the first row, as months
// of history (spread over many client ids, the change log already pruned and the horizon
// moved), and how long the seed and the fleet's resync past it took.
type Dataset struct {
	SeededCaptures int     `json:"seeded_captures"`
	Owners         int     `json:"owners"`
	Prunes         int     `json:"prunes"`
	Horizon        int64   `json:"horizon"`
	SeedSeconds    float64 `json:"seed_seconds"`
	ResyncSeconds  float64 `json:"resync_seconds"`
}

// TimeScale records how far a profile shortened the production windows.
type TimeScale struct {
	// ForScale multiplies every production `for:` duration (1 = unchanged,
	// 0.1 = ten times shorter).
	ForScale float64 `json:"for_scale"`
	Note     string  `json:"note,omitempty"`
}

// Provenance pins what was tested, so two reports can be compared.
type Provenance struct {
	HarnessRevision string     `json:"harness_revision"`
	HarnessDirty    bool       `json:"harness_dirty,omitempty"`
	GoVersion       string     `json:"go_version,omitempty"`
	DockerVersion   string     `json:"docker_version,omitempty"`
	Images          []Image    `json:"images,omitempty"`
	Files           []FileHash `json:"files,omitempty"`
	LabelFilter     string     `json:"label_filter,omitempty"`
	Host            string     `json:"host,omitempty"`
}

// Image is one container image the stack ran.
type Image struct {
	Role string `json:"role"`
	Ref  string `json:"ref"`
	ID   string `json:"id"`
}

// FileHash pins a data file the verdict depends on (matrix, rule files).
type FileHash struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// Verdict is derived from the rest of the run by ComputeVerdict.
type Verdict struct {
	Decision string   `json:"decision"`
	Reasons  []string `json:"reasons,omitempty"`
}

// BaselineCheck compares one field of a live endpoint with the value the
// reliability program's baseline captures list.
type BaselineCheck struct {
	Endpoint string `json:"endpoint"`
	Field    string `json:"field"`
	Document string `json:"document"`
	Observed string `json:"observed"`
	Pass     bool   `json:"pass"`
}

// GateStep is one step of the release-gate checklist.
type GateStep struct {
	Step    int    `json:"step"`
	Name    string `json:"name"`
	Command string `json:"command,omitempty"`
	Result  string `json:"result"`
	Detail  string `json:"detail,omitempty"`
}

// Row is one failure mode of the matrix, as run.
type Row struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Labels   []string `json:"labels,omitempty"`
	Runbook  string   `json:"runbook,omitempty"`
	Triggers []string `json:"triggers,omitempty"`
	Status   Status   `json:"status"`
	Failure  string   `json:"failure,omitempty"`
	// Attempts counts BeginRow calls for this ID (Ginkgo retries).
	Attempts    int          `json:"attempts"`
	Started     time.Time    `json:"started,omitzero"`
	Ended       time.Time    `json:"ended,omitzero"`
	Fault       Fault        `json:"fault"`
	Mitigation  Mitigation   `json:"mitigation"`
	Times       Times        `json:"times"`
	Evaluations []Evaluation `json:"evaluations,omitempty"`
	DataLoss    *DataLoss    `json:"data_loss,omitempty"`
	Timeline    *Timeline    `json:"timeline,omitempty"`
	// Server is what the Prometheus server in the stack fired over the row, against the
	// embedded engine (nil when the server is off: Run.PrometheusServer says why).
	Server *ServerAgreement `json:"prometheus_server,omitempty"`
}

// Fault is what was injected, and proof that it acted.
type Fault struct {
	Kind       string            `json:"kind"`
	Target     string            `json:"target"`
	Params     map[string]string `json:"params,omitempty"`
	InjectedAt time.Time         `json:"injected_at,omitzero"`
	HealedAt   time.Time         `json:"healed_at,omitzero"`
	Proof      []Proof           `json:"proof,omitempty"`
}

// Proof is one observation showing the fault took effect.
type Proof struct {
	What  string `json:"what"`
	Value string `json:"value"`
}

// Mitigation is the first mitigation from the document, as applied.
type Mitigation struct {
	Action    string    `json:"action,omitempty"`
	AppliedAt time.Time `json:"applied_at,omitzero"`
}

// Times are the measured durations; nil means the moment was not reached.
// Detect and Fire count from Fault.InjectedAt, Recover from
// Mitigation.AppliedAt.
type Times struct {
	Detect  *Duration `json:"detect_ms,omitempty"`
	Fire    *Duration `json:"fire_ms,omitempty"`
	Recover *Duration `json:"recover_ms,omitempty"`
}

// Evaluation is one PromQL expression evaluated at one instant.
type Evaluation struct {
	Phase   string    `json:"phase"`
	Expr    string    `json:"expr"`
	Value   Float     `json:"value"`
	Present bool      `json:"present"`
	Want    string    `json:"want"`
	Pass    bool      `json:"pass"`
	At      time.Time `json:"at"`
}

// DataLoss is the checker's judgement of the row's workload history.
type DataLoss struct {
	Verdict            string `json:"verdict"`
	Ops                int    `json:"ops"`
	Acknowledged       int    `json:"acknowledged"`
	Lost               int    `json:"lost"`
	Duplicated         int    `json:"duplicated"`
	Unexpected         int    `json:"unexpected"`
	RejectedButApplied int    `json:"rejected_but_applied"`
	Unknown            int    `json:"unknown"`
	Detail             string `json:"detail,omitempty"`
}

// Timeline holds the series drawn for a row.
type Timeline struct {
	Series  []Series `json:"series"`
	Windows []Span   `json:"windows,omitempty"`
}

// Series is one expression sampled over time.
type Series struct {
	Name   string  `json:"name"`
	Expr   string  `json:"expr"`
	Kind   string  `json:"kind"`
	Points []Point `json:"points"`
}

// Point is one sample.
type Point struct {
	T time.Time `json:"t"`
	V Float     `json:"v"`
}

// Span is a labelled interval (the fault window, the mitigation...).
type Span struct {
	From  time.Time `json:"from"`
	To    time.Time `json:"to,omitzero"`
	Label string    `json:"label"`
}

// Window is the no-fault control run or the canary.
type Window struct {
	// Planned is the span the window was meant to cover.
	Planned  Duration       `json:"planned_ms"`
	Started  time.Time      `json:"started"`
	Ended    time.Time      `json:"ended,omitzero"`
	Triggers []TriggerTrace `json:"triggers"`
	Pass     bool           `json:"pass"`
	Detail   string         `json:"detail,omitempty"`
	// Server is what the Prometheus server in the stack fired over the window (nil when
	// the server is off).
	Server *ServerAgreement `json:"prometheus_server,omitempty"`
	// ProductionServer is the canary's second server: the rule files as written
	// (production for: and windows), started with the canary, against the canary's
	// production-timing evaluator.
	ProductionServer *ServerAgreement `json:"prometheus_server_production,omitempty"`
}

// PrometheusServer describes the real Prometheus server that ran beside the embedded
// engine: it scraped the harness's exporter and evaluated the same rules itself.
type PrometheusServer struct {
	// Enabled is false when the knob (PB_PROMETHEUS=off) or the engine turned it off;
	// Reason says which.
	Enabled bool   `json:"enabled"`
	Reason  string `json:"reason,omitempty"`
	Version string `json:"version,omitempty"`
	Image   string `json:"image,omitempty"`
	// Rules says which rule files it loaded (the profile's scaled copy, or as written).
	Rules string `json:"rules,omitempty"`
	// ScrapeInterval and EvalInterval are the server's global settings.
	ScrapeInterval Duration `json:"scrape_interval_ms"`
	EvalInterval   Duration `json:"eval_interval_ms"`
	// BootSeconds is from container start to the first successful scrape of the
	// harness, rules loaded (the run boots the rest meanwhile); MemoryBytes the
	// container's peak memory, read when the run ended.
	BootSeconds float64 `json:"boot_seconds,omitempty"`
	MemoryBytes int64   `json:"memory_bytes,omitempty"`
}

// ServerAgreement compares the alerts the Prometheus server fired over a row or window
// with those the embedded engine fired over the same span.
type ServerAgreement struct {
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	Agree bool      `json:"agree"`
	// Tolerance is the largest fire-time difference that still agrees: two scrape plus
	// two evaluation intervals.
	Tolerance Duration         `json:"tolerance_ms"`
	Alerts    []AlertAgreement `json:"alerts"`
	// Detail names every disagreement, or says what agreed.
	Detail string `json:"detail,omitempty"`
}

// AlertAgreement is one alert over a span: did each evaluator fire it, and when first.
type AlertAgreement struct {
	Alert         string    `json:"alert"`
	EmbeddedFired bool      `json:"embedded_fired"`
	ServerFired   bool      `json:"server_fired"`
	EmbeddedAt    time.Time `json:"embedded_fired_at,omitzero"`
	ServerAt      time.Time `json:"server_fired_at,omitzero"`
	// Delta is ServerAt − EmbeddedAt, when both fired.
	Delta *Duration `json:"delta_ms,omitempty"`
	Agree bool      `json:"agree"`
	// AtTheEdge, when only one evaluator fired, says that the other held the alert
	// pending for about its whole for: (within a sample at each end), which is agreement:
	// which side of the for: each landed on was the sampling phase.
	AtTheEdge string `json:"at_the_edge,omitempty"`
}

// TriggerTrace is one rollback trigger over a window.
type TriggerTrace struct {
	Alert     string  `json:"alert"`
	Expr      string  `json:"expr,omitempty"`
	MaxValue  Float   `json:"max_value"`
	EverFired bool    `json:"ever_fired"`
	Points    []Point `json:"points,omitempty"`
}

// Shard summarises one input of Merge.
type Shard struct {
	RunID       string    `json:"run_id"`
	LabelFilter string    `json:"label_filter,omitempty"`
	Host        string    `json:"host,omitempty"`
	Started     time.Time `json:"started"`
	Ended       time.Time `json:"ended,omitzero"`
	Complete    bool      `json:"complete"`
	Rows        []string  `json:"rows,omitempty"`
}
