// Entry point: takes the token from the URL fragment (once), starts the live connection and
// renders the dashboard.
import { createRoot } from 'react-dom/client';
import { RagPulseProvider } from '@ragpulse/client/react';
import { LiveStatus } from '@ragpulse/client';
import { App } from './app.js';
import { takeToken } from './url.js';

function clientId(): string {
  try {
    let id = localStorage.getItem('ragpulse.client_id');
    if (!id) {
      id = crypto.randomUUID();
      localStorage.setItem('ragpulse.client_id', id);
    }
    return id;
  } catch {
    return crypto.randomUUID();
  }
}

const live = new LiveStatus({ token: takeToken(), clientId: clientId() });
const root = document.getElementById('root');
if (root) createRoot(root).render(<RagPulseProvider live={live}><App /></RagPulseProvider>);
