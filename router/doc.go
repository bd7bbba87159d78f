// Package router is Shoal's stateless HTTP front door: it validates requests, routes names to the meta group's primary and content to chunk holders, and streams bodies.
package router
