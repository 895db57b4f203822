// Where each role's pages live. Clients and admins have separate route trees
// so that the router's role guard can keep them apart.

export function homeFor(user) {
  return user.role === 'admin' ? '#/admin/devices' : '#/';
}

export function alertsHrefFor(user) {
  return user.role === 'admin' ? '#/admin/alerts' : '#/alerts';
}

export function deviceHrefFor(user) {
  return user.role === 'admin' ? (id) => `#/admin/devices/${id}` : (id) => `#/devices/${id}`;
}
