//! Tests of the Redis backend against a private redis-server.
