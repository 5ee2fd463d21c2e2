package console

import (
	"net/http"
	"net/url"
	"time"

	"github.com/go-chi/chi/v5"
)

// clientRow is a registered client of GET /clients and GET /clients/{id}.
type clientRow struct {
	ClientID               string    `json:"client_id"`
	Name                   string    `json:"name"`
	Type                   string    `json:"type"`
	RedirectURIs           []string  `json:"redirect_uris"`
	PostLogoutRedirectURIs []string  `json:"post_logout_redirect_uris"`
	GrantTypes             []string  `json:"grant_types"`
	Scopes                 []string  `json:"scopes"`
	IDTokenAlg             string    `json:"id_token_signed_response_alg"`
	HasSecret              bool      `json:"has_secret"`
	Roles                  []string  `json:"roles"`
	Version                int       `json:"version"`
	CreatedAt              time.Time `json:"created_at"`
	UpdatedAt              time.Time `json:"updated_at"`
}

type clientPage struct {
	Items      []clientRow `json:"items"`
	NextCursor string      `json:"next_cursor"`
}

func (c *Console) clients(w http.ResponseWriter, r *http.Request) {
	q := url.Values{}
	if cur := r.URL.Query().Get("cursor"); cur != "" {
		q.Set("cursor", cur)
	}
	var p clientPage
	if err := c.clientOf(r).query(r.Context(), "/clients", q, &p); err != nil {
		c.apiFailure(w, r, err)
		return
	}
	c.page(w, r, "clients.html", view{Title: "Clients", Section: "/clients", Data: p})
}

func (c *Console) client(w http.ResponseWriter, r *http.Request) {
	var cl clientRow
	if err := c.clientOf(r).query(r.Context(), "/clients/"+url.PathEscape(chi.URLParam(r, "id")), nil, &cl); err != nil {
		c.apiFailure(w, r, err)
		return
	}
	c.page(w, r, "client.html", view{Title: "Client " + cl.Name, Section: "/clients", Data: cl})
}
