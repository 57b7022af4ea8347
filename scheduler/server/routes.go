package server

import (
	"net/http"
	"strings"

	"github.com/berthsh/terraform-provider-berth/scheduler/api"
)

// routes is every route of the API, in one place: pattern; for mutating
// routes the role, the success status and whether the start is recorded
// before the operation runs (operations on engines). Reads need any role.
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc(api.RouteHealthz, s.healthz)

	mux.Handle(api.RoutePoolList, s.query(s.listPools))
	mux.Handle(api.RoutePoolApply, s.command(RoleAdmin, http.StatusOK, true, s.applyPool))
	mux.Handle(api.RoutePoolPlan, s.command(RoleAdmin, http.StatusOK, false, s.planPool))
	mux.Handle(api.RoutePoolGet, s.query(s.getPool))
	mux.Handle(api.RoutePoolDelete, s.command(RoleAdmin, http.StatusNoContent, true, s.deletePool))
	mux.Handle(api.RoutePoolUsage, s.query(s.poolUsage))
	mux.Handle(api.RouteUsage, s.query(s.usage))

	mux.Handle(api.RouteLeaseTake, s.command(RoleDeploy, http.StatusOK, false, s.takeLease()))
	mux.Handle(api.RouteLeaseList, s.query(s.listLeases))
	mux.Handle(api.RouteLeaseGet, s.query(s.getLease))
	mux.Handle(api.RouteLeaseRelease, s.command(RoleDeploy, http.StatusNoContent, false, s.releaseLease))
	mux.Handle(api.RouteLeaseBatch, s.command(RoleDeploy, http.StatusOK, false, s.leaseBatch))

	mux.Handle(api.RouteContainerCreate, s.command(RoleDeploy, http.StatusCreated, true, s.createContainer()))
	mux.Handle(api.RouteContainerRead, s.query(s.readContainers))
	mux.Handle(api.RouteContainerPlanRes, s.query(s.planResize()))
	mux.Handle(api.RouteContainerResize, s.command(RoleDeploy, http.StatusOK, true, s.resizeContainer()))
	mux.Handle(api.RouteContainerReconf, s.command(RoleDeploy, http.StatusOK, true, s.reconfigureContainer()))
	mux.Handle(api.RouteContainerStart, s.command(RoleDeploy, http.StatusOK, true, s.startContainer()))
	mux.Handle(api.RouteContainerStop, s.command(RoleDeploy, http.StatusOK, true, s.stopContainer()))
	mux.Handle(api.RouteContainerDelete, s.command(RoleDeploy, http.StatusNoContent, true, s.deleteContainer()))
	mux.Handle(api.RouteContainerFind, s.query(s.findContainer))
	mux.Handle(api.RouteImageResolve, s.query(s.resolveImage()))

	mux.Handle(api.RouteNetworkPlan, s.command(RoleDeploy, http.StatusOK, false, s.planNetwork()))
	mux.Handle(api.RouteNetworkApply, s.command(RoleDeploy, http.StatusOK, true, s.applyNetwork()))
	mux.Handle(api.RouteNetworkGet, s.query(s.getNetwork))
	mux.Handle(api.RouteNetworkDelete, s.command(RoleDeploy, http.StatusNoContent, true, s.deleteNetwork()))

	mux.Handle(api.RouteVolumePlan, s.query(s.planVolume()))
	mux.Handle(api.RouteVolumeCreate, s.command(RoleDeploy, http.StatusCreated, true, s.createVolume()))
	mux.Handle(api.RouteVolumeRead, s.query(s.readVolume()))
	mux.Handle(api.RouteVolumeDelete, s.command(RoleDeploy, http.StatusNoContent, true, s.deleteVolume()))
	mux.Handle(api.RouteVolumeFind, s.query(s.findVolume))

	// JSON errors for the rest: a known path with another method, and
	// unknown paths.
	seen := map[string]bool{}
	for _, pattern := range api.Routes {
		_, path, _ := strings.Cut(pattern, " ")
		if !seen[path] {
			seen[path] = true
			mux.HandleFunc(path, func(w http.ResponseWriter, _ *http.Request) {
				replyErr(apiError(api.CodeMethodNotAllowed, "method not allowed on "+path)).write(w)
			})
		}
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		replyErr(apiError(api.CodeNotFound, "no route "+r.URL.Path)).write(w)
	})
	return mux
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	if !s.ready.Load() {
		replyErr(apiError(api.CodeNotReady, "the store or the ledger is still loading")).write(w)
		return
	}
	replyOf(http.StatusOK, map[string]string{"status": "ok"}).write(w)
}
