package app

import (
	"strconv"
	"time"

	"github.com/authstream/authstream/libs/fault"
)

// ReasonTenantQuarantined is the problem reason of a request to a tenant
// whose read model is quarantined.
const ReasonTenantQuarantined = "tenant-quarantined"

// CheckQuarantine returns nil unless tenant's read model is stopped at an
// event the projector cannot apply; then it returns a fault.Unavailable
// naming the quarantine and the event's stream sequence. Such a tenant's
// rows hold its state before that event, so nothing read from them may be
// presented as current (a user disabled after it would still pass), and
// its consistency tokens look satisfied, since the partition's checkpoint
// passes its held events: the check comes before both. The projector's
// error is not shown: it is for operators (authctl projections status).
func (a *App) CheckQuarantine(tenant string) error {
	if a.quarantines == nil {
		return nil
	}
	seq, ok := a.quarantines.Quarantined(tenant)
	if !ok {
		return nil
	}
	return fault.WithRetryAfter(fault.New(fault.Unavailable, ReasonTenantQuarantined,
		"the read model of tenant "+tenant+" is quarantined: the projector stopped at an event it cannot apply (stream sequence "+
			strconv.FormatUint(seq, 10)+"); its requests are refused until an operator resumes it"), 30*time.Second)
}
