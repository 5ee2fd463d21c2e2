package authz

import "strings"

// ConsoleClientID is the client id of the web console in every tenant: a
// public OpenID Connect client (authorization code with PKCE) that the
// command service registers with the tenant, and the query service's
// console signs in as. Client ids the command API makes are UUIDs, so it
// never collides with an application's client.
const ConsoleClientID = "console"

// ConsoleHome returns the console's home page of tenant at publicURL (the
// query service's public URL): <publicURL>/console/t/<tenant>/. It is the
// console client's post-logout redirect URI.
func ConsoleHome(publicURL, tenant string) string {
	return strings.TrimSuffix(publicURL, "/") + "/console/t/" + tenant + "/"
}

// ConsoleCallback returns the console client's redirect URI in tenant:
// <publicURL>/console/t/<tenant>/callback.
func ConsoleCallback(publicURL, tenant string) string {
	return ConsoleHome(publicURL, tenant) + "callback"
}
