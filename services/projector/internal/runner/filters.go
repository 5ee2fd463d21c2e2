package runner

import (
	"strconv"

	"github.com/authstream/authstream/libs/events"
)

// PartitionFilter returns the subject filter of one partition of
// AUTH_EVENTS: every tenant, aggregate and id whose stored subject ends in
// the partition.
func PartitionFilter(partition int) string {
	return events.SubjectPrefixEvents + ".*.*.*." + strconv.Itoa(partition)
}

// TenantFilter returns the subject filter of one tenant's events.
func TenantFilter(tenant string) string {
	return events.SubjectPrefixEvents + "." + tenant + ".>"
}
