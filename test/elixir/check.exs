# The Elixir check (run by test/elixir/run.sh): on an Elixir node, start the
# :reckon_cnode application attached to the C node given as the argument and
# use :reckon_cnode_emitter_group and :reckon_cnode as an Elixir user would.
# Prints one line per check and "elixir: N passed, M failed"; exits
# non-zero if any check failed.

defmodule ElixirCheck do
  @scope :reckon_db_pg

  def main([cnode_name]) do
    cnode = String.to_atom(cnode_name)
    # Belt and braces: C emitters monitor (not link) their subscriber, but a
    # subscriber that traps exits is safe whatever the emitter does.
    Process.flag(:trap_exit, true)
    :ok = Application.load(:reckon_cnode)
    Application.put_env(:reckon_cnode, :cnode, cnode)
    Application.put_env(:reckon_cnode, :call_timeout, 10_000)
    {:ok, _} = Application.ensure_all_started(:reckon_cnode)

    results = Enum.map(checks(cnode), &run/1)
    failed = Enum.count(results, &(&1 != :ok))
    passed = length(results) - failed
    :ok = Application.stop(:reckon_cnode)
    IO.puts("elixir: #{passed} passed, #{failed} failed")
    System.halt(if failed == 0, do: 0, else: 1)
  end

  def main(_) do
    IO.puts(:stderr, "usage: elixir ... check.exs CNODE")
    System.halt(2)
  end

  defp run({name, fun}) do
    result =
      try do
        fun.()
      catch
        kind, reason -> {:raised, kind, reason, __STACKTRACE__}
      end

    case result do
      :ok ->
        IO.puts("ok   #{name}")
        :ok

      other ->
        IO.puts("FAIL #{name}: #{inspect(other, limit: 20)}")
        :failed
    end
  end

  # Each check returns :ok or what went wrong.
  defp checks(cnode) do
    sub = "ex-" <> Integer.to_string(System.unique_integer([:positive]))

    [
      {"shim attached to the C node",
       fn ->
         expect(cnode, :reckon_cnode.node())
         |> and_then(fn -> expect(true, :reckon_cnode.status().connected) end)
       end},
      {"topic/2",
       fn ->
         expect("orders:sub-1", :reckon_cnode_emitter_group.topic(:orders, "sub-1"))
         |> and_then(fn ->
           expect(<<99, 97, 102, 233, 58, 115, 117, 98>>,
                  :reckon_cnode_emitter_group.topic(:"café", "sub"))
         end)
         |> and_then(fn ->
           expect("orders:$all", :reckon_cnode_emitter_group.topic(:orders, "$all"))
         end)
       end},
      {"topic/2 badarg for a store name above latin-1",
       fn -> expect_raise(:badarg, fn -> :reckon_cnode_emitter_group.topic(:"αβ", "s") end) end},
      {"group_key/2",
       fn ->
         expect({:orders, "sub-1", :emitters},
                :reckon_cnode_emitter_group.group_key(:orders, "sub-1"))
       end},
      {"emitter_name/2,3",
       fn ->
         expect(:"orders_sub-1_emitter", :reckon_cnode_emitter_group.emitter_name(:orders, "sub-1"))
         |> and_then(fn ->
           expect(:"orders_sub-1_emitter_3",
                  :reckon_cnode_emitter_group.emitter_name(:orders, "sub-1", 3))
         end)
         |> and_then(fn ->
           # each byte of the subscription id is one character
           expect(List.to_atom(~c"s_" ++ [195, 188] ++ ~c"_emitter"),
                  :reckon_cnode_emitter_group.emitter_name(:s, "ü"))
         end)
       end},
      {"emitter_name/2 system_limit over 255 characters",
       fn ->
         expect_raise(:system_limit, fn ->
           :reckon_cnode_emitter_group.emitter_name(:orders, String.duplicate("x", 250))
         end)
       end},
      {"persist_emitters/3 and retrieve_emitters/2",
       fn ->
         names = [String.to_atom("orders_#{sub}_emitter"), String.to_atom("orders_#{sub}_emitter_2")]

         expect([], :reckon_cnode_emitter_group.retrieve_emitters(:orders, sub))
         |> and_then(fn -> expect(names, :reckon_cnode_emitter_group.persist_emitters(:orders, sub, 2)) end)
         |> and_then(fn -> expect(names, :reckon_cnode_emitter_group.retrieve_emitters(:orders, sub)) end)
       end},
      {"join/3, members/2, leave/3 with an Elixir process",
       fn ->
         pid = spawn(fn -> receive do: (:stop -> :ok) end)

         result =
           expect(:ok, :reckon_cnode_emitter_group.join(:ex_store, sub, [pid, pid]))
           |> and_then(fn ->
             await(fn -> Enum.sort(:reckon_cnode_emitter_group.members(:ex_store, sub)) end, [pid, pid])
           end)
           |> and_then(fn ->
             expect([pid, pid], :pg.get_members(@scope, {:ex_store, sub, :emitters}))
           end)
           |> and_then(fn -> expect(:ok, :reckon_cnode_emitter_group.leave(:ex_store, sub, pid)) end)
           |> and_then(fn -> expect(:ok, :reckon_cnode_emitter_group.leave(:ex_store, sub, [pid])) end)
           |> and_then(fn -> await(fn -> :reckon_cnode_emitter_group.members(:ex_store, sub) end, []) end)

         send(pid, :stop)
         result
       end},
      {"join/3, leave/3 with a C node pid; {nolocal, x} for a non-local element",
       fn ->
         cpid = remote_pid(cnode)
         sub2 = sub <> "-c"

         expect(cnode, node(cpid))
         |> and_then(fn -> expect(:ok, :reckon_cnode_emitter_group.join(:ex_store, sub2, cpid)) end)
         |> and_then(fn -> expect([cpid], :reckon_cnode_emitter_group.members(:ex_store, sub2)) end)
         |> and_then(fn ->
           await(fn -> :pg.get_members(@scope, {:ex_store, sub2, :emitters}) end, [cpid])
         end)
         |> and_then(fn -> expect(:ok, :reckon_cnode_emitter_group.leave(:ex_store, sub2, [cpid])) end)
         |> and_then(fn -> expect([], :reckon_cnode_emitter_group.members(:ex_store, sub2)) end)
         |> and_then(fn ->
           expect_raise({:nolocal, :foo}, fn ->
             :reckon_cnode_emitter_group.join(:ex_store, sub2, [self(), :foo])
           end)
         end)
       end},
      {"broadcast/3 with no emitters",
       fn ->
         expect({:error, :no_emitters},
                :reckon_cnode_emitter_group.broadcast(:ex_store, sub <> "-none", event(0)))
         |> and_then(fn ->
           expect({:error, :no_emitters},
                  :reckon_cnode.broadcast_via_cnode(:ex_store, sub <> "-none", event(0)))
         end)
       end},
      {"C emitter pool delivers {:events, [event]} to this process",
       fn -> pool_check(cnode, sub) end},
      {"stats/0",
       fn ->
         stats = :reckon_cnode.stats()
         expect(true, is_map(stats) and is_integer(stats[:broadcasts]) and stats[:broadcasts] >= 1)
       end}
    ]
  end

  defp pool_check(cnode, sub) do
    group = {:ex_store, sub, :emitters}

    case :reckon_cnode.start_emitter_pool(:ex_store, sub, 2, self()) do
      {:ok, [p1, p2] = pids} ->
        expect([cnode, cnode], Enum.map(pids, &node/1))
        |> and_then(fn ->
          expect([String.to_atom("ex_store_#{sub}_emitter"), String.to_atom("ex_store_#{sub}_emitter_2")],
                 :reckon_cnode_emitter_group.retrieve_emitters(:ex_store, sub))
        end)
        |> and_then(fn ->
          expect({:error, :already_started}, :reckon_cnode.start_emitter_pool(:ex_store, sub, 2, self()))
        end)
        # the C node syncs its emitters into this node's pg scope
        |> and_then(fn -> await(fn -> Enum.sort(:pg.get_members(@scope, group)) end, Enum.sort([p1, p2])) end)
        |> and_then(fn ->
          ev = event(1)
          expect(:ok, :reckon_cnode_emitter_group.broadcast(:ex_store, sub, ev))
          |> and_then(fn -> receive_events([ev]) end)
        end)
        |> and_then(fn ->
          ev = event(2)
          expect(:ok, :reckon_cnode.broadcast_via_cnode(:ex_store, sub, ev))
          |> and_then(fn -> receive_events([ev]) end)
        end)
        |> and_then(fn ->
          evs = for i <- 3..52, do: event(i)
          results = for ev <- evs, do: :reckon_cnode_emitter_group.broadcast(:ex_store, sub, ev)
          expect([:ok], Enum.uniq(results)) |> and_then(fn -> receive_events(evs) end)
        end)
        |> and_then(fn -> expect(:ok, :reckon_cnode.stop_emitter_pool(:ex_store, sub)) end)
        |> and_then(fn -> await(fn -> :pg.get_members(@scope, group) end, []) end)
        |> and_then(fn ->
          expect({:error, :no_emitters}, :reckon_cnode_emitter_group.broadcast(:ex_store, sub, event(99)))
        end)
        |> and_then(fn -> expect({:error, :not_found}, :reckon_cnode.stop_emitter_pool(:ex_store, sub)) end)
        |> tap(fn _ -> flush_exits() end)

      other ->
        {:start_emitter_pool, other}
    end
  end

  # A 12-field reckon-db event record (11-field for every third).
  defp event(i) do
    id = "ex-ev-#{i}"

    if rem(i, 3) == 0 do
      {:event, id, "created", "stream-ex", i, "data", %{}, 1_700_000_000_000,
       1_700_000_000_000_000, "application/octet-stream", "application/json"}
    else
      {:event, id, "created", "stream-ex", i, %{"n" => i, "nested" => %{"list" => [1, 2.5, "x"]}},
       %{"corr" => "c"}, ["tag"], 1_700_000_000_000, 1_700_000_000_000_000,
       "application/json", "application/json"}
    end
  end

  # Each event of evs arrives once as {:events, [event]} (any order).
  defp receive_events(evs) do
    got =
      Enum.map(evs, fn _ ->
        receive do
          {:events, [ev]} -> ev
        after
          10_000 -> :timeout
        end
      end)

    expect(Enum.sort(evs), Enum.sort(got))
  end

  defp flush_exits do
    receive do
      {:EXIT, _, _} -> flush_exits()
    after
      0 -> :ok
    end
  end

  defp remote_pid(cnode) do
    {:ok, [pid]} = :gen_server.call({:reckon_cnode, cnode}, {:spawn_idle, 1}, 10_000)
    pid
  end

  defp expect(want, got) when want === got, do: :ok
  defp expect(want, got), do: {:expected, want, :got, got}

  defp expect_raise(reason, fun) do
    try do
      {:returned, fun.()}
    catch
      :error, ^reason -> :ok
      kind, other -> {:expected_error, reason, :got, kind, other}
    end
  end

  defp and_then(:ok, next), do: next.()
  defp and_then(failed, _next), do: failed

  # Polls fun every 20 ms (5 s at most) until it returns want.
  defp await(fun, want, deadline \\ nil) do
    deadline = deadline || System.monotonic_time(:millisecond) + 5_000

    case fun.() do
      ^want ->
        :ok

      got ->
        if System.monotonic_time(:millisecond) > deadline do
          {:timeout, :expected, want, :got, got}
        else
          Process.sleep(20)
          await(fun, want, deadline)
        end
    end
  end
end

ElixirCheck.main(System.argv())
