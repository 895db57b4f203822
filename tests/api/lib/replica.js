'use strict';
// replica: a real streaming replica of a test's PostgreSQL cluster (issue 19).
//
//   const { startReplica } = require('./lib/replica');
//   const replica = await startReplica(pg);      // pg: a cluster from startPostgres()
//   replica.readUrlFor(server.databaseUrl)       // that URL's user and database, on the standby
//   await replica.waitCaughtUp(pg)               // everything the primary wrote is replayed
//   replica.stop({mode}), start(), crash(), destroy(), psql(sql), scalar(sql), ...
//
// The standby is `pg_basebackup -R -X stream` of the primary, taken over the primary's
// Unix socket as its superuser (initdb -A trust allows `local replication`), in a
// directory of its own, started on its own port and socket directory. It is a
// PgCluster (lib/harness.js) like any other: the same stop/start/crash, and the same
// cleanup — the exit hook and the reaper stop it and remove its directory however the
// test process ends.

const fs = require('node:fs');
const path = require('node:path');
const h = require('./harness');

const REPLICA_READY_TIMEOUT_MS = 30000;

class Replica extends h.PgCluster {
  // The primary's URL (any user and database) pointing at the standby instead.
  readUrlFor(databaseUrl) {
    const url = new URL(databaseUrl);
    url.hostname = '127.0.0.1';
    url.port = String(this.port);
    return url.toString();
  }

  inRecovery() {
    return this.scalar('select pg_is_in_recovery()') === true;
  }

  // Resolves once the standby has replayed everything the primary had written when
  // this was called (its current WAL position).
  async waitCaughtUp(primary, { timeout = REPLICA_READY_TIMEOUT_MS } = {}) {
    const lsn = primary.scalar('select pg_current_wal_lsn()::text');
    await h.waitFor(() => this.scalar(
      `select pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '${lsn}') >= 0`) === true,
    { timeout, message: `the replica to replay up to ${lsn}` });
  }
}

// Makes, starts and returns a standby of primary (a running PgCluster), in recovery
// and accepting read-only connections.
async function startReplica(primary) {
  const replica = new Replica({ dir: h.makeClusterDir(), fsync: false });
  h.track(replica, replica.dir);
  try {
    await h.runAsOwner('pg_basebackup', ['-D', replica.dataDir, '-R', '-X', 'stream',
      '-h', primary.dir, '-p', String(primary.port), '-U', 'wattline', '--no-sync',
      '-c', 'fast']);
    // The backup holds the primary's harness.conf (its port and socket directory):
    // startOnce() writes the standby's own over it.
    fs.rmSync(path.join(replica.dataDir, 'postmaster.pid'), { force: true });
    for (let attempt = 0; ; attempt++) {
      replica.port = await h.freePort();
      if (await replica.startOnce()) break;
      if (attempt >= 4) throw new Error('startReplica: no free port after 5 attempts');
    }
    await h.waitFor(() => {
      try {
        return replica.inRecovery();
      } catch {
        return false; // still starting
      }
    }, { timeout: REPLICA_READY_TIMEOUT_MS, message: 'the replica to accept connections' });
  } catch (err) {
    const log = replica.logTail();
    await replica.destroy().catch(() => {});
    throw new Error(`${err.message}\nreplica log:\n${log}`);
  }
  return replica;
}

module.exports = { startReplica };
