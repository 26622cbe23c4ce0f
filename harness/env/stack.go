package env

// Role names a container of the stack; it is also the container's network alias.
type Role string

// The roles of the reference stack (docs/CONTRACTS.md, "Topology and edges").
const (
	Postgres  Role = "postgres"
	Redis     Role = "redis"
	KV        Role = "kv"
	Toxiproxy Role = "toxiproxy"
	Server    Role = "server"
	Worker    Role = "worker"
	Provider  Role = "provider"
	Clients   Role = "clients"
	// VPSHost is the release gate's VPS host: sshd and the deploy checkout.
	VPSHost Role = "vpshost"
)

// Edge is one dependency edge, realised as a named Toxiproxy proxy.
type Edge struct {
	Name     string // proxy name, e.g. "pg"
	From, To Role
	Port     int    // the proxy listens on 0.0.0.0:Port inside the toxiproxy container
	Upstream string // alias:port of the target
}

// Edges is the topology; every service is configured to reach the next hop through
// toxiproxy:<Port>, never directly.
var Edges = []Edge{
	{Name: "edge", From: Clients, To: Worker, Port: 18787, Upstream: "worker:8787"},
	{Name: "vps", From: Worker, To: Server, Port: 18788, Upstream: "server:8788"},
	{Name: "pg", From: Server, To: Postgres, Port: 15432, Upstream: "postgres:5432"},
	{Name: "redis", From: Server, To: Redis, Port: 16379, Upstream: "redis:6379"},
	{Name: "kv", From: Worker, To: KV, Port: 16380, Upstream: "kv:6379"},
	{Name: "provider", From: Worker, To: Provider, Port: 18790, Upstream: "provider:8790"},
}

// EdgeByName finds an edge; ok is false for an unknown name.
func EdgeByName(name string) (Edge, bool) {
	for _, e := range Edges {
		if e.Name == name {
			return e, true
		}
	}
	return Edge{}, false
}

// servicePort is the port each role listens on inside the network.
var servicePort = map[Role]int{
	Postgres: 5432, Redis: 6379, KV: 6379, Toxiproxy: 8474,
	Server: 8788, Worker: 8787, Provider: 8790, Clients: 8789, VPSHost: 22,
}

// HTTPPort is the port a role serves HTTP on (0 for non-HTTP roles).
func HTTPPort(r Role) int {
	switch r {
	case Postgres, Redis, KV, VPSHost:
		return 0
	}
	return servicePort[r]
}

// Topologies: which roles a profile starts. The full stack is the default; the
// server-only stack serves the foundation's first row and the fast unit of CI.
var (
	FullStack   = []Role{Toxiproxy, Postgres, Redis, KV, Provider, Server, Worker, Clients, VPSHost}
	ServerStack = []Role{Toxiproxy, Postgres, Redis, Server}
)

// startWave orders container starts: toxiproxy first, so that every proxy exists
// before a service dials through it; then everything else in parallel (each service
// retries its dependencies by itself, as it would in production).
func startWave(r Role) int {
	if r == Toxiproxy {
		return 0
	}
	return 1
}
