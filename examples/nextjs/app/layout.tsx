// The root layout (a server component): plain HTML around every page.
import type { ReactNode } from 'react';
import './globals.css';

export const metadata = { title: 'ragpulse in Next.js', description: 'One ragpulse pipeline, live' };

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body>{children}</body>
    </html>
  );
}
