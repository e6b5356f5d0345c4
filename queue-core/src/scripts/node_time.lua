-- The clock of the node that holds the queue (KEYS[1], any key of the queue), as
-- {seconds, microseconds}: on a cluster a bare TIME could go to another node.
return redis.call('TIME')
