// Package prometheus holds no code: its tests check alerts.yml, the
// Prometheus alerting rules beside them, with Prometheus's own rule-file
// parser and against the metrics a running cloakroomd exports. It is a
// module of its own so that Prometheus's modules are not dependencies of
// Cloakroom.
package prometheus
