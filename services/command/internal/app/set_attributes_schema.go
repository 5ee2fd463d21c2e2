package app

import (
	"context"

	"github.com/authstream/authstream/services/command/internal/domain"
)

// SetAttributesSchema replaces the JSON Schema a tenant's users'
// attributes must be valid under. It needs settings:write in the tenant.
type SetAttributesSchema struct {
	Request
	Tenant string
	Schema []byte
}

type setAttributesSchemaHandler struct{ e *engine }

// Handle appends tenant.settings_changed with the new schema in the whole
// settings document, or nothing when the schema is the one held
// (domain.Tenant.SetAttributesSchema). Result.Settings is the document
// after the command.
func (h setAttributesSchemaHandler) Handle(ctx context.Context, cmd SetAttributesSchema) (Result, error) {
	return h.e.changeSettings(ctx, cmd.Request, cmd.Tenant, func(t *domain.Tenant) error { return t.SetAttributesSchema(cmd.Schema) })
}
