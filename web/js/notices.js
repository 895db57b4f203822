// Forecasts and device status changes from the WebSocket: a forecast is a
// warning (the hour is on course to go over its limit; nothing has happened
// yet), shown apart from an alert; a device going offline or coming back is
// news for the device cards, which listen for 'wattline:device-status'.

import { currentUser } from './auth.js';
import { deviceHrefFor } from './paths.js';
import { formatHour, kwh, number, timeAgo } from './format.js';
import { toast } from './ui.js';

function deviceHref(id) {
  const user = currentUser();
  return user ? deviceHrefFor(user)(id) : `#/devices/${id}`;
}

export function receiveForecast(forecast) {
  const hour = formatHour(new Date(forecast.hour_start));
  toast(`${number(forecast.hour_kwh_so_far)} kWh so far in the hour from ${hour}: on course for `
    + `${number(forecast.projected_kwh)} kWh, over the ${kwh(forecast.max_hourly_kwh)} limit.`, {
    kind: 'warning',
    title: `Forecast: ${forecast.device_name} may go over its limit`,
    action: { label: 'View device', href: deviceHref(forecast.device_id) },
  });
}

export function receiveDeviceStatus(message) {
  document.dispatchEvent(new CustomEvent('wattline:device-status', { detail: message }));
  const offline = message.status === 'offline';
  toast(offline
    ? `Nothing heard since ${timeAgo(message.last_seen_at)}.`
    : 'Readings are arriving again.', {
    kind: offline ? 'warning' : 'info',
    title: `${message.device_name} is ${offline ? 'offline' : 'back online'}`,
    action: { label: 'View device', href: deviceHref(message.device_id) },
  });
}
