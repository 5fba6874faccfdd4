import { useState } from 'preact/hooks';
import { submitToken } from '../api/session';

/** Asks for the daemon's bearer token (the one given with `uigniter daemon --token`). */
export function TokenForm({ message }: { message: string | null }) {
  const [token, setToken] = useState('');
  return (
    <div class="center-box">
      <form
        class="token-form"
        data-testid="token-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (token.trim()) submitToken(token);
        }}
      >
        <h2>uigniter</h2>
        <p>This daemon wants an access token.</p>
        <label>
          Token
          <input
            type="password"
            autoComplete="off"
            autoFocus
            data-testid="token-input"
            value={token}
            onInput={(e) => setToken(e.currentTarget.value)}
          />
        </label>
        {message && <p class="error">{message}</p>}
        <button type="submit" class="primary" disabled={!token.trim()}>
          Connect
        </button>
      </form>
    </div>
  );
}
