// Package kubernetes holds no code: its tests check cloakroom.yaml, the
// Kubernetes manifest beside them, against the Kubernetes API types and
// against cloakroomd itself. It is a module of its own so that the
// Kubernetes API modules the tests need are not dependencies of Cloakroom.
package kubernetes
