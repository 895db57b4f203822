'use strict';
// certs: TLS material for the HTTPS/WSS tests, made with the openssl command line.
//
//   const certs = require('./lib/certs');
//   const dev = certs.makeDevCerts(dir);        // tools/certs.sh DIR (what `make certs` runs)
//       -> {dir, caCert, caKey, cert, key, ca}  // paths; ca = the CA certificate's PEM text
//   const other = certs.makeCa(dir, 'Other CA') // an unrelated CA: {caCert, caKey, ca}
//   const old = certs.signServerCert(dev, dir, 'expired', {
//     san: 'DNS:localhost,IP:127.0.0.1', startDate: '20200101000000Z', endDate: '20210101000000Z' })
//       -> {cert, key}                          // signed by dev's CA with exactly those dates
//   certs.tempDir('wattline-tls-', base)        // a private temporary directory (in base, by
//                                               // default the system's), removed at exit
//
// OpenSSL 3.0's `x509 -req` and `req -x509` only take -days (no past dates), so
// signServerCert uses `openssl ca`, which takes -startdate/-enddate, with a minimal
// configuration and database of its own in DIR.

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const CERTS_SCRIPT = path.join(REPO_ROOT, 'tools', 'certs.sh');

const tempDirs = [];
let cleanupInstalled = false;

// A fresh 0700 directory under base (the system temp dir by default), removed when the
// process exits.
function tempDir(prefix, base = os.tmpdir()) {
  const dir = fs.mkdtempSync(path.join(base, prefix));
  tempDirs.push(dir);
  if (!cleanupInstalled) {
    cleanupInstalled = true;
    process.on('exit', () => {
      for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
    });
  }
  return dir;
}

// Runs openssl; throws with its stderr, so a failed step says why.
function openssl(args, { cwd } = {}) {
  try {
    return execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    throw new Error(`openssl ${args.join(' ')} failed: ${err.stderr || err.message}`);
  }
}

function newKey(file) {
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file]);
  fs.chmodSync(file, 0o600);
}

// The development CA and server certificate exactly as `make certs` makes them.
function makeDevCerts(dir) {
  try {
    execFileSync(CERTS_SCRIPT, [dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    throw new Error(`tools/certs.sh ${dir} failed (${err.status}): ${err.stderr || err.message}`);
  }
  const files = {
    dir,
    caCert: path.join(dir, 'ca.crt'),
    caKey: path.join(dir, 'ca.key'),
    cert: path.join(dir, 'server.crt'),
    key: path.join(dir, 'server.key'),
  };
  for (const file of Object.values(files)) {
    if (!fs.existsSync(file)) throw new Error(`tools/certs.sh did not create ${file}`);
  }
  return { ...files, ca: fs.readFileSync(files.caCert, 'utf8') };
}

// A self-signed CA that has nothing to do with the development one.
function makeCa(dir, commonName) {
  fs.mkdirSync(dir, { recursive: true });
  const caKey = path.join(dir, 'ca.key');
  const caCert = path.join(dir, 'ca.crt');
  newKey(caKey);
  openssl(['req', '-x509', '-new', '-key', caKey, '-subj', `/O=Wattline tests/CN=${commonName}`,
    '-sha256', '-days', '30', '-out', caCert,
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  return { caCert, caKey, ca: fs.readFileSync(caCert, 'utf8') };
}

// Configuration for `openssl ca`: its own database, no policy on the subject, and the
// extensions a TLS server certificate needs. Dates come from the command line.
function caConfig(dir, san) {
  return `[ca]
default_ca = test_ca

[test_ca]
dir = ${dir}
database = ${dir}/index.txt
new_certs_dir = ${dir}
serial = ${dir}/serial
default_md = sha256
policy = any_policy
unique_subject = no
copy_extensions = none
email_in_dn = no

[any_policy]
commonName = supplied

[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = ${san}
`;
}

// A server certificate for `san`, signed by issuer's CA, valid from startDate to endDate
// (openssl ca's YYYYMMDDHHMMSSZ). Files go into DIR/NAME.
function signServerCert(issuer, dir, name, { san, startDate, endDate }) {
  const work = path.join(dir, name);
  fs.mkdirSync(work, { recursive: true });
  fs.writeFileSync(path.join(work, 'index.txt'), '');
  fs.writeFileSync(path.join(work, 'serial'), `${Date.now().toString(16).padStart(16, '0')}\n`);
  const config = path.join(work, 'ca.cnf');
  fs.writeFileSync(config, caConfig(work, san));
  const key = path.join(work, 'server.key');
  const csr = path.join(work, 'server.csr');
  const cert = path.join(work, 'server.crt');
  newKey(key);
  openssl(['req', '-new', '-key', key, '-subj', '/CN=localhost', '-out', csr]);
  openssl(['ca', '-batch', '-notext', '-config', config, '-cert', issuer.caCert,
    '-keyfile', issuer.caKey, '-in', csr, '-out', cert, '-extensions', 'server_ext',
    '-startdate', startDate, '-enddate', endDate]);
  return { cert, key };
}

module.exports = { makeCa, makeDevCerts, signServerCert, tempDir };
