// Package helmcheck holds the tests that render the Helm chart under
// deployments/helm and validate what it renders; it has no code of its own.
package helmcheck
